// Generate one JSON Schema per exported alias of schema-entry.ts, straight from the
// official .d.ts files (see ../README.md). Usage: node gen-schemas.mjs <outDir>
// Writes <outDir>/<Name>.json for every `export type <Name>` (names starting with "_"
// are compile-time guards and are skipped) and <outDir>/_manifest.json.
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { createGenerator } from "ts-json-schema-generator";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(process.argv[2] ?? join(here, "..", ".schema-cache"));
const entry = join(here, "schema-entry.ts");
const names = [...readFileSync(entry, "utf8").matchAll(/^export type (\w+)/gm)]
  .map((m) => m[1])
  .filter((n) => !n.startsWith("_"));

// API result/payload types go through @cargo-ai/api's helper types (ApiType, DateToString),
// which ts-json-schema-generator cannot evaluate on unions: let the TypeScript checker
// evaluate them first (flatten-types.mjs), then generate from the printed result.
const isApiType = (n) => /(Result|Payload|Body)$/.test(n);
mkdirSync(outDir, { recursive: true });
const flatFile = join(outDir, "api-flat.ts");
execFileSync(process.execPath, [join(here, "flatten-types.mjs"), flatFile, ...names.filter(isApiType)], {
  stdio: ["ignore", "ignore", "inherit"],
});
const options = {
  type: "*",
  expose: "export",
  topRef: false,
  jsDoc: "none",
  additionalProperties: false,
  skipTypeCheck: true, // `tsc -p tsconfig.json` is run separately by the suite
};
const domainGenerator = createGenerator({ ...options, path: entry, tsconfig: join(here, "tsconfig.json") });
const apiGenerator = createGenerator({ ...options, path: flatFile });

const pkg = (p) => JSON.parse(readFileSync(join(here, "node_modules", p, "package.json"), "utf8")).version;
const manifest = {
  generatedFrom: {
    "@cargo-ai/api": pkg("@cargo-ai/api"),
    "@cargo-ai/types": pkg("@cargo-ai/types"),
    "ts-json-schema-generator": pkg("ts-json-schema-generator"),
    typescript: pkg("typescript"),
  },
  names,
};
for (const name of names) {
  const schema = (isApiType(name) ? apiGenerator : domainGenerator).createSchema(name);
  schema.$schema = "http://json-schema.org/draft-07/schema#";
  schema.title = name;
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(schema, null, 1));
}
writeFileSync(join(outDir, "_manifest.json"), JSON.stringify(manifest, null, 1));
console.log(JSON.stringify({ outDir, count: names.length }));
