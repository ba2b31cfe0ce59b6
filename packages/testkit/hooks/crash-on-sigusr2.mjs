// Preloaded by the service contract's rule 8 (`node --import <this file> bin ...`): SIGUSR2 throws an error that
// nothing catches, so the test can check what the service runtime does with an uncaught error, without a hook in
// the service itself. (SIGUSR1 is Node's inspector signal, hence SIGUSR2.)
process.on('SIGUSR2', () => {
  throw new Error('service contract rule 8: deliberate uncaught error');
});
