// Preloaded by the service contract's rule 7.5 (`node --import <this file> bin ...`): the first time the service
// starts listening (a TCP listen or a UDP bind), this sends the process the signals named in
// NET_TESTKIT_START_SIGNALS (`SIGTERM`, or `SIGTERM,SIGINT` for a second one) and holds that listen back until each
// has been handled, so the signals land during start-up, before any ready line, without a hook in the service.
// Start the service without --admin-port to hit its own listeners; with it, the admin endpoint's listen comes first.
import dgram from 'node:dgram';
import net from 'node:net';

const signals = (process.env.NET_TESTKIT_START_SIGNALS || 'SIGTERM').split(',').filter((s) => s !== '');
let fired = false;

/** Sends one signal and resolves once the process's own handlers have run (ours is added after theirs). */
function send(signal) {
  process.stderr.write(`testkit: ${signal} during start-up\n`);
  // No handler: the default action kills the process, which is what the rule detects. A listener of ours would
  // change that, so it is added only when the service handles the signal already.
  if (process.listenerCount(signal) === 0) {
    process.kill(process.pid, signal);
    return new Promise(() => {});
  }
  const handled = new Promise((resolve) => process.once(signal, resolve));
  process.kill(process.pid, signal);
  return handled;
}

function hold(proto, method) {
  const original = proto[method];
  proto[method] = function (...args) {
    if (fired) return original.apply(this, args);
    fired = true;
    // Node's signal handles do not keep the loop alive, and nothing else may while the listen is held back.
    const keepAlive = setInterval(() => {}, 1000);
    (async () => {
      for (const signal of signals) await send(signal);
      clearInterval(keepAlive);
      original.apply(this, args);
    })();
    return this;
  };
}

hold(net.Server.prototype, 'listen');
hold(dgram.Socket.prototype, 'bind');
