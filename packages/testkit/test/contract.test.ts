import { fileURLToPath } from 'node:url';
import { serviceContract } from '../src/index.js';
import { echoProbe } from './echo-probe.js';

// The correct fixture passes the whole suite, exactly as a service's own test/contract.test.ts calls it.
serviceContract({
  service: 'tiny-echo',
  bin: fileURLToPath(new URL('../fixtures/echo.mjs', import.meta.url)),
  probe: echoProbe,
  clients: ['check'],
});
