#!/usr/bin/env node
// API reports for the package's four entry points (api/*.api.md), made by API Extractor from the compiled
// declarations in dist/ (run `npm run build` first).
//
//   node scripts/api-report.mjs           check: fails when an exported API differs from its checked-in report
//                                         (the difference is printed) or API Extractor reports a problem
//   node scripts/api-report.mjs --local   update: rewrites the reports in api/ (commit them with the API change)
//
// Every entry point is checked even when an earlier one fails.
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const local = process.argv.includes('--local');
const configs = ['api-extractor.json', 'config/api-extractor.simulator.json', 'config/api-extractor.distributed.json', 'config/api-extractor.proxy.json', 'config/api-extractor.discordjs.json'];

let failed = 0;
for (const file of configs) {
  const config = ExtractorConfig.loadFileAndPrepare(join(root, file));
  const entry = relative(root, config.mainEntryPointFilePath);
  const report = relative(root, config.reportFilePath);
  if (!existsSync(config.mainEntryPointFilePath)) {
    console.error(`api: ${entry} is missing; run \`npm run build\` first`);
    failed++;
    continue;
  }
  const result = Extractor.invoke(config, { localBuild: local, showVerboseMessages: false, printApiReportDiff: !local });
  if (result.succeeded) {
    console.log(`api: ${report} ${local && result.apiReportChanged ? 'updated' : 'ok'}`);
  } else {
    failed++;
    const why = result.apiReportChanged ? `the API of ${entry} differs from ${report}` : `${result.errorCount} errors, ${result.warningCount} warnings`;
    console.error(`api: ${report} FAILED (${why})`);
  }
}
if (failed > 0) {
  if (!local) console.error('api: if the API change is intended, run `npm run api:update` and commit the files in api/');
  process.exitCode = 1;
}
