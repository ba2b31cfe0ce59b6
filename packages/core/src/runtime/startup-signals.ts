/**
 * SIGTERM and SIGINT during start-up. Until a process handles a signal, the kernel applies the default action: a
 * SIGTERM that an orchestrator sends while the service is still starting (a rollout that changed its mind, a
 * Ctrl-C during a slow start) would kill it by signal instead of ending it with exit 0 and a log line. These
 * handlers are installed first thing and replaced by the drain's own once the service runs.
 */
import type { Logger } from './logger.js';

type Target = Pick<NodeJS.Process, 'on' | 'off'>;

/** What a signal during start-up leads to; see {@link StartupSignals}. */
export class StartupSignals {
  #phase: 'before' | 'starting' = 'before';
  #received: NodeJS.Signals | undefined;
  #log: Logger | undefined;
  readonly #target: Target;
  readonly #exit: (code: number) => void;
  readonly #onSignal = (signal: NodeJS.Signals) => this.#handle(signal);

  /**
   * Installs the handlers.
   * @param options.target where the handlers go (the process; tests pass an emitter).
   * @param options.exit how the process exits (process.exit; tests pass a spy).
   */
  constructor(options: { target?: Target; exit?: (code: number) => void } = {}) {
    this.#target = options.target ?? process;
    this.#exit = options.exit ?? ((code) => process.exit(code));
    this.#target.on('SIGTERM', this.#onSignal);
    this.#target.on('SIGINT', this.#onSignal);
  }

  /** The logger to report to, once there is one. */
  set log(log: Logger) {
    this.#log = log;
  }

  /**
   * From now on listeners may be opening: a signal is recorded (see {@link received}) and the runtime drains as
   * soon as the service has started, instead of exiting at once and abandoning half-open listeners.
   */
  starting(): void {
    this.#phase = 'starting';
  }

  /** The first signal received while starting, if any. */
  get received(): NodeJS.Signals | undefined {
    return this.#received;
  }

  /** Removes the handlers; call it right before installing the running process's own. */
  dispose(): void {
    this.#target.off('SIGTERM', this.#onSignal);
    this.#target.off('SIGINT', this.#onSignal);
  }

  #handle(signal: NodeJS.Signals): void {
    if (this.#phase === 'before') {
      // Nothing listens yet: there is nothing to drain.
      this.#log?.info({ signal }, 'stopped during start-up: nothing was listening yet');
      this.#exit(0);
      return;
    }
    if (this.#received !== undefined) {
      this.#log?.warn({ signal }, 'second signal during start-up: exiting at once');
      this.#exit(130);
      return;
    }
    this.#received = signal;
    this.#log?.info({ signal }, 'signal during start-up: draining as soon as the service has started');
  }
}
