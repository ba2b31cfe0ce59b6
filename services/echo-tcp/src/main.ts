#!/usr/bin/env node
/** The `echo-tcp` command: `serve` (default), `client`, `check`. */
import { runService } from '@net/core';
import { service } from './service.js';

await runService(service);
