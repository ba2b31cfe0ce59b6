#!/usr/bin/env node
/** The `daytime-tcp` command: `serve` (default) or `client`. */
import { runService } from '@net/core';
import { service } from './service.js';

await runService(service);
