// Parse every ```mermaid block of the given Markdown files with Mermaid's own parser.
//
//   node scripts/check_mermaid.mjs FILE.md [...]
//
// Prints one line per diagram, `FILE:LINE: ok <diagram type>` or `FILE:LINE: error <message>` (LINE is
// the line of the opening fence), and exits 1 when any diagram does not parse. Mermaid runs in jsdom:
// no browser is needed. Install the tools with `make node-tools` (package.json, package-lock.json).
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const { window } = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

const FENCE = /^```mermaid[ \t]*\r?\n([\s\S]*?)^```[ \t]*$/gm;

let failures = 0;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  for (const match of text.matchAll(FENCE)) {
    const line = text.slice(0, match.index).split("\n").length;
    try {
      const { diagramType } = await mermaid.parse(match[1]);
      console.log(`${file}:${line}: ok ${diagramType}`);
    } catch (error) {
      failures += 1;
      const message = String(error?.message ?? error).replace(/\s*\n\s*/g, " | ");
      console.log(`${file}:${line}: error ${message}`);
    }
  }
}
process.exit(failures ? 1 : 0);
