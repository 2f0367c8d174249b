// Reference records for SDL files, computed by the official Akash TypeScript SDK.
//
// Usage: node sdk-ref/sdl-reference.mjs INPUT_DIR OUTPUT_DIR
//
// For every *.yaml / *.yml file under INPUT_DIR (recursively), writes OUTPUT_DIR/<relative path>.json:
//   { file, accepted, stage?, errorName?, error?, groups?, manifest?, sortedJson?, version? }
// `stage` says which SDK call threw: "parse" (SDL.fromString: YAML or validation), "groups",
// "manifest" or "version". `errorName` is the thrown error's class name (SdlValidationError,
// YAMLException, TypeError, Error ...).
//
// Normalisation, so that the Rust side compares meaning rather than JavaScript representation:
// - groups: byte values (Uint8Array of ASCII digits) become strings; proto3 defaults are written out
//   (a missing endpoint kind is 0 = SHARED_HTTP, missing attribute lists are []); field names are the
//   proto field names (signed_by, all_of, any_of, sequence_number). Attribute values are strings on
//   chain, but the SDK passes placement attribute values through as YAML gave them (`ip-lease: true`
//   stays a boolean), so every attribute value is compared as String(value).
// - manifest: the value of sdl.manifest() with every resource value `{val}` written as a string
//   (numbers and byte buffers alike) and memory/storage quantities named `size`, as Go's
//   manifest/v2beta3 JSON names them. `sortedJson` is the exact string the SDK hashes.
// Exit code 0 when every record was written, whatever the verdicts.

import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { SDL } from "@akashnetwork/chain-sdk";

const [inputDir, outputDir] = process.argv.slice(2);
if (!inputDir || !outputDir) {
  console.error("usage: node sdl-reference.mjs INPUT_DIR OUTPUT_DIR");
  process.exit(2);
}

function listYaml(dir) {
  const out = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...listYaml(path));
    else if (/\.ya?ml$/.test(entry)) out.push(path);
  }
  return out;
}

function bytesToString(value) {
  return new TextDecoder().decode(value);
}

function valString(value) {
  if (value instanceof Uint8Array) return bytesToString(value);
  if (value === null || value === undefined) return value;
  return String(value);
}

function attrs(list) {
  if (!Array.isArray(list)) return [];
  return list.map(({ key, value }) => ({ key, value: String(value) }));
}

function normaliseResources(r) {
  return {
    id: r.id,
    cpu: { units: { val: valString(r.cpu?.units?.val) }, attributes: attrs(r.cpu?.attributes) },
    memory: { quantity: { val: valString(r.memory?.quantity?.val) }, attributes: attrs(r.memory?.attributes) },
    storage: (r.storage ?? []).map((s) => ({
      name: s.name,
      quantity: { val: valString(s.quantity?.val) },
      attributes: attrs(s.attributes),
    })),
    gpu: { units: { val: valString(r.gpu?.units?.val) }, attributes: attrs(r.gpu?.attributes) },
    endpoints: (r.endpoints ?? []).map((e) => ({ kind: e.kind ?? 0, sequence_number: e.sequence_number ?? 0 })),
  };
}

function normaliseGroups(groups) {
  return groups.map((g) => ({
    name: g.name,
    requirements: {
      signed_by: {
        all_of: g.requirements?.signedBy?.allOf ?? [],
        any_of: g.requirements?.signedBy?.anyOf ?? [],
      },
      attributes: attrs(g.requirements?.attributes),
    },
    resources: g.resources.map((u) => ({
      resource: normaliseResources(u.resource),
      count: u.count,
      price: { denom: u.price?.denom, amount: u.price?.amount },
    })),
  }));
}

// Deep copy of sdl.manifest() through JSON, with resource values as strings and quantities as `size`.
function normaliseManifest(manifest) {
  const walk = (value, key) => {
    if (value instanceof Uint8Array) return bytesToString(value);
    if (Array.isArray(value)) return value.map((v) => walk(v));
    if (value && typeof value === "object") {
      const out = {};
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined) continue;
        const name = k === "quantity" ? "size" : k;
        out[name] = k === "val" ? valString(v) : walk(v, k);
      }
      return out;
    }
    return value;
  };
  return JSON.parse(JSON.stringify(walk(manifest)));
}

function toHex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

let count = 0;
for (const file of listYaml(inputDir)) {
  const rel = relative(inputDir, file);
  const record = { file: rel, accepted: false };
  let stage = "parse";
  try {
    const sdl = SDL.fromString(readFileSync(file, "utf8"), "beta3", "mainnet");
    stage = "groups";
    const groups = normaliseGroups(sdl.groups());
    stage = "manifest";
    const manifest = normaliseManifest(sdl.manifest());
    stage = "version";
    const sortedJson = sdl.manifestSortedJSON();
    const version = toHex(await sdl.manifestVersion());
    Object.assign(record, { accepted: true, groups, manifest, sortedJson, version });
  } catch (err) {
    Object.assign(record, {
      stage,
      errorName: err?.name ?? typeof err,
      error: String(err?.message ?? err),
    });
  }
  const out = join(outputDir, `${rel}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  count += 1;
}
console.error(`sdl-reference: ${count} records written to ${outputDir}`);
