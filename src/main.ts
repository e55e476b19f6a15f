#!/usr/bin/env node
// The bin, and the only entry: start-up runs in cli/start.ts, in its security order.
import { start } from './cli/start.js';

await start(process.argv.slice(2));
