/**
 * For the bench orchestrators only (they run under tsx; measured processes never load this file): make sure the
 * server and client processes find the payload fixtures.
 * @module
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONTROL_FIXTURES, DISPATCH_FIXTURES, SUGGESTED_MIX } from '../src/simulator/fixtures-data.js';
import { fixturesPath } from './common.js';

/** Use the shared fixture file beside the repository, or else write the same data as packaged with the simulator to `outDir`. */
export function ensureFixtures(outDir: string): void {
  if (existsSync(fixturesPath())) return;
  const copy = join(outDir, 'fixtures.json');
  writeFileSync(copy, JSON.stringify({ control: CONTROL_FIXTURES, dispatch: DISPATCH_FIXTURES, suggested_mix: SUGGESTED_MIX }));
  process.env.SHARDLINE_FIXTURES = copy; // inherited by the server and client processes
}
