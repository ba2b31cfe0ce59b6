import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ContractTarget,
  checkAdmin,
  checkBadConfig,
  checkClients,
  checkDrain,
  checkLogs,
  checkPromtool,
  checkStartupSignal,
  promtoolUnavailable,
  stopAllServices,
} from '../src/index.js';
import { echoProbe } from './echo-probe.js';

function fixture(file: string, more: Partial<ContractTarget> = {}): ContractTarget {
  return {
    service: 'tiny-echo',
    bin: fileURLToPath(new URL(`../fixtures/${file}`, import.meta.url)),
    probe: echoProbe,
    ...more,
  };
}

// Each deliberately broken fixture must make exactly the rule it breaks fail, with a message that says why:
// a suite that cannot fail proves nothing.
describe('the service contract fails a broken service', () => {
  afterEach(stopAllServices);

  it('rule 3 fails when bad configuration exits 1 instead of 2', async () => {
    await expect(checkBadConfig(fixture('broken-exit-code.mjs'))).rejects.toThrow(/must exit with code 2 \(exited 1/);
  });

  it('rule 7 fails when /readyz keeps answering 200 during the drain', async () => {
    await expect(checkDrain(fixture('broken-readyz.mjs'))).rejects.toThrow(/\/readyz did not answer 503/);
  });

  it('rule 7 fails when --drain-delay is ignored and new connections are refused at the signal', async () => {
    await expect(checkDrain(fixture('broken-drain-delay.mjs'))).rejects.toThrow(
      /during --drain-delay new connections must still be served/,
    );
  });

  it('rule 6 fails when a metric has no # TYPE line', async () => {
    await expect(checkAdmin(fixture('broken-metric-type.mjs'))).rejects.toThrow(
      /# HELP and # TYPE[\s\S]*net_requests_total/,
    );
  });

  it('rule 6 fails when a sample carries instance, a label the scraper sets', async () => {
    await expect(checkAdmin(fixture('broken-target-label.mjs'))).rejects.toThrow(
      /no sample may carry the labels instance or job[\s\S]*tiny_queue_depth\{instance="box-1"\}/,
    );
  });

  it.skipIf(promtoolUnavailable() !== undefined)(
    'rule 10 fails when promtool rejects a metric name (a gauge ending in _total; skipped without promtool)',
    async () => {
      await expect(checkPromtool(fixture('broken-metric-name.mjs'))).rejects.toThrow(
        /promtool check metrics must accept \/metrics \(exit [1-9]\d*\):\n.*tiny_queue_total.*_total/,
      );
    },
  );

  it('rule 5 fails when every connection is logged at info', async () => {
    await expect(checkLogs(fixture('broken-info-log.mjs'))).rejects.toThrow(
      /nothing may be logged per connection[\s\S]*connection accepted/,
    );
  });

  it('rule 7.5 fails when a signal during start-up kills the service', async () => {
    await expect(checkStartupSignal(fixture('broken-startup-signal.mjs'))).rejects.toThrow(
      /must not kill the service by the signal \(it died by SIGTERM\)/,
    );
  });

  it('rule 9 fails when a client exits 1 instead of 69 on a refused connect', async () => {
    await expect(checkClients(fixture('broken-client-exit.mjs', { clients: ['check'] }))).rejects.toThrow(
      /where nothing listens must exit 69 \(refused\); exited 1/,
    );
  });

  it('rule 9 fails when a client setting’s variable lacks the command (TINY_ECHO_TIMEOUT)', async () => {
    await expect(checkClients(fixture('broken-client-env.mjs', { clients: ['check'] }))).rejects.toThrow(
      /PREFIX_<COMMAND>_<SETTING>[\s\S]*--timeout \(expected Env: TINY_ECHO_CHECK_TIMEOUT; Env: TINY_ECHO_TIMEOUT\./,
    );
  });

  it('rule 9 fails when a client’s --help ends with exit codes of its own', async () => {
    await expect(checkClients(fixture('broken-client-help.mjs', { clients: ['check'] }))).rejects.toThrow(
      /--help must end with the client exit-code table/,
    );
  });

  it('rule 9 fails when a service does not declare its client commands', async () => {
    await expect(checkClients(fixture('echo.mjs'))).rejects.toThrow(
      /client commands its contract test does not declare: pass clients: \['check'\]/,
    );
  });

  it('the broken fixtures differ from the correct one only in what they break', async () => {
    // Rule 5 passes on the fixture whose exit code is wrong: the checks are independent of each other.
    await expect(checkLogs(fixture('broken-exit-code.mjs'))).resolves.toBeUndefined();
    // Rule 7.5 passes on it too, and rule 5 on the one that dies on an early signal.
    await expect(checkStartupSignal(fixture('broken-exit-code.mjs'))).resolves.toBeUndefined();
    await expect(checkLogs(fixture('broken-startup-signal.mjs'))).resolves.toBeUndefined();
    // Rule 9 passes on the fixture whose bad configuration exits 1 (its clients are untouched), and rule 3 on the
    // ones with broken clients.
    await expect(checkClients(fixture('broken-info-log.mjs', { clients: ['check'] }))).resolves.toBeUndefined();
    await expect(checkBadConfig(fixture('broken-client-exit.mjs'))).resolves.toBeUndefined();
    await expect(checkBadConfig(fixture('broken-client-env.mjs'))).resolves.toBeUndefined();
    // Rule 6 passes on the fixture with the misnamed gauge: only promtool's naming rules catch it.
    await expect(checkAdmin(fixture('broken-metric-name.mjs'))).resolves.toBeUndefined();
  });
});
