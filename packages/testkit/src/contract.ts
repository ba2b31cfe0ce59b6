/** `serviceContract()`: the rules of docs/service-contract.md as one vitest test each. */
import { afterEach, describe, it } from 'vitest';
import { type ContractTarget, RULES, type RuleId } from './rules.js';
import { stopAllServices } from './service-process.js';

/** Options of {@link serviceContract}. */
export interface ServiceContractOptions extends ContractTarget {
  /**
   * Rules this service cannot meet, with the reason (also stated in the service README). They are reported as
   * skipped tests whose name carries the reason, never left out silently.
   */
  skip?: Partial<Record<RuleId, string>>;
}

/**
 * Registers `describe('service contract: <service>')` with one test per rule, each against the built bin spawned
 * on loopback. Call it at the top level of a test file.
 *
 * @example
 * serviceContract({ service: 'echo-tcp', bin: fileURLToPath(new URL('../dist/main.js', import.meta.url)), probe });
 */
export function serviceContract(options: ServiceContractOptions): void {
  const { skip, ...target } = options;
  describe(`service contract: ${target.service}`, () => {
    // Each check kills what it started; this catches anything a failed or timed-out test left behind.
    afterEach(stopAllServices);
    for (const rule of RULES) {
      const name = `rule ${rule.id}: ${rule.title}`;
      const reason = skip?.[rule.id];
      const unavailable = reason === undefined ? rule.unavailable?.() : undefined;
      if (reason !== undefined) it.skip(`${name} [not met: ${reason}]`, () => {});
      else if (unavailable !== undefined) it.skip(`${name} [cannot check here: ${unavailable}]`, () => {});
      else it(name, { timeout: rule.timeoutMs }, () => rule.check(target));
    }
  });
}
