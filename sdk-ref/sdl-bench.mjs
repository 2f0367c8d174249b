// SDL throughput of the official Akash TypeScript SDK, for comparison with our Rust code.
//
// Usage: node sdk-ref/sdl-bench.mjs INPUT_DIR [MIN_SECONDS]
//
// One pass reads nothing from disk: it runs, for every *.yaml file of INPUT_DIR (texts loaded once),
// SDL.fromString + groups() + manifest() + manifestVersion(); a file the SDK rejects costs what it
// took to reject it. After one warm-up pass it repeats passes until MIN_SECONDS (default 3) have
// passed, then prints one JSON line: {"files": N, "passes": P, "seconds": S, "files_per_second": F}.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SDL } from "@akashnetwork/chain-sdk";

const [inputDir, minSecondsArg] = process.argv.slice(2);
if (!inputDir) {
  console.error("usage: node sdl-bench.mjs INPUT_DIR [MIN_SECONDS]");
  process.exit(2);
}
const minSeconds = Number(minSecondsArg ?? 3);
const texts = readdirSync(inputDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
  .map((f) => readFileSync(join(inputDir, f), "utf8"));

async function pass() {
  for (const text of texts) {
    try {
      const sdl = SDL.fromString(text, "beta3", "mainnet");
      sdl.groups();
      sdl.manifest();
      await sdl.manifestVersion();
    } catch {
      // Rejected files count too: rejecting is work the tool does.
    }
  }
}

await pass();
const start = process.hrtime.bigint();
let passes = 0;
let seconds = 0;
while (seconds < minSeconds) {
  await pass();
  passes += 1;
  seconds = Number(process.hrtime.bigint() - start) / 1e9;
}
const files = texts.length;
console.log(JSON.stringify({ files, passes, seconds, files_per_second: (files * passes) / seconds }));
