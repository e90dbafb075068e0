/**
 * The chaos soak (`bench/soak.ts`, `npm run soak`) at CI length: ~30 s of random faults on 10 shards with a
 * fixed seed, every invariant checked. It runs after the other test files, alone (`npm test`'s second step):
 * on a scaled clock (1 real ms = 100 virtual ms) a second of CPU starvation from a browser starting in a
 * parallel test file is 100 s of "silence" to both ends, which no real gateway session would see.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatReport, runSoak } from '../../bench/soak.js';
import { failOnUnhandledRejections } from '../helpers/setup.js';

failOnUnhandledRejections();

/** Seed of the CI run; a failing seed from `npm run soak` can be pasted here to replay it. */
const CI_SEED = 20_250_608;
/** Seconds of faults in the CI run (the whole test stays under ~45 s wall time). */
const CI_SECONDS = Number(process.env.CHAOS_SECONDS ?? 28);

describe('chaos soak (CI length)', () => {
  it(`seed ${CI_SEED}, ${CI_SECONDS} s of random faults on 10 shards: zero violations`, { timeout: 120_000 }, async (t) => {
    const report = await runSoak({ seed: CI_SEED, durationMs: CI_SECONDS * 1000, shards: 10, log: (l) => t.diagnostic(l) });
    const summary = formatReport(report);
    for (const line of summary.split('\n')) t.diagnostic(line);
    assert.equal(report.violations, 0, summary);
    assert.equal(report.unhandledRejections, 0);
    // The run did what it claims: many faults of many kinds, resumes and forced new sessions, markers checked.
    assert.ok(report.faultsTotal >= CI_SECONDS * 2, `faults injected: ${report.faultsTotal}`);
    assert.ok(Object.keys(report.faults).length >= 12, `fault labels: ${Object.keys(report.faults).join(', ')}`);
    assert.ok(report.client.resumes > 10 && report.newSessions > 0, 'resumes and forced new sessions happened');
    assert.ok(report.markers.delivered > 500, 'markers were checked');
    assert.ok(report.fatal.checked && Object.values(report.fatal.codes).every((s) => / fatal/.test(s)), 'every fatal code stopped its shard');
    assert.ok(report.memory.samples.length >= 10, 'memory was sampled');
    assert.ok(report.memory.handlesAfterClose <= report.memory.handlesBefore, 'no handle left after close');
  });
});
