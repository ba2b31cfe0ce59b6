#!/usr/bin/env node
import { runService } from '@net/core';
import { service } from './service.js';

await runService(service);
