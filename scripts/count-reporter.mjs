// A node:test reporter that writes one line of JSON with the run's counts, for scripts/test.mjs:
//   {"summary":{"tests":N,"pass":N,"fail":N,"cancelled":N,"skipped":N,"todo":N,...},"events":{...}}
// `summary` is the runner's own closing summary (the `# pass N` lines of the tap/spec output); `events` counts the
// test:pass / test:fail events of tests (not suites) as a fallback for a run that never got to its summary.
const SUMMARY = /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) (\d+(?:\.\d+)?)$/;

export default async function* countReporter(source) {
  const summary = {};
  const events = { pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
  for await (const event of source) {
    const data = event.data ?? {};
    if (event.type === 'test:diagnostic' && (data.nesting ?? 0) === 0) {
      const m = SUMMARY.exec(String(data.message).trim());
      if (m) summary[m[1]] = Number(m[2]);
    } else if (event.type === 'test:summary' && data.counts && data.file === undefined) {
      // Node >= 22 reports the whole run's counts in one event as well.
      Object.assign(summary, data.counts);
    } else if ((event.type === 'test:pass' || event.type === 'test:fail') && data.details?.type !== 'suite') {
      if (data.skip) events.skipped++;
      else if (data.todo) events.todo++;
      else if (event.type === 'test:pass') events.pass++;
      else if (data.details?.error?.failureType === 'cancelledByParent') events.cancelled++;
      else events.fail++;
    }
  }
  yield `${JSON.stringify({ summary, events })}\n`;
}
