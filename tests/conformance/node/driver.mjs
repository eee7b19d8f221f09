// Official-client driver: exercises the Cargo API through `buildApi` from @cargo-ai/api
// (the official TypeScript client), against any base URL, and prints ONE JSON document.
//
//   CARGO_DRIVER_TOKEN=T node driver.mjs --base-url http://127.0.0.1:PORT --scenario NAME [--state FILE]
//
// For every call the output holds:
//   { ok: true,  result }                                   (what the official client returned)
//   { ok: false, error: { type, status, reason, message, data, thrown } }
//   plus `wire`: every HTTP exchange the client made for that call, captured through the
//   client's documented `transport.fetch` hook: method, url, request headers/body, status,
//   raw response text. The raw text matters: the client turns JSON null into undefined,
//   so schema validation of the wire form must use the raw body.
//
// Scenarios (the pytest side decides which emulator each runs against):
//   catalog   read-only calls + error cases that do not depend on time (incl. storage models /
//             datasets and the current user, once more with a workspace-bound client)
//   start     (manual clock) create batches of every kind; calls that need them unfinished; a single tool run
//             cancelled while pending (runs.cancel by uuids)
//   finish    (after the clock advanced) the same batches, finished: get/list/download/cancel, the cancelled run,
//             runs list/count/metrics/download-outputs/get, the files behind the URLs, and
//             the current user (the creator of those batches)
//   lifecycle (real clock) list plays -> create -> poll get until terminal -> download ->
//             plain fetch of the URL (no token)
//   fidelity  (real clock) behaviours from Cargo's own docs: a single tool run polled until terminal and
//             a play's run create (playNotCompatible); file upload + listColumns + a file batch; a tool
//             batch with failed runs downloaded (one row per input record) and its download-outputs
//             rows; usage units; an unknown body key; a misspelled conjonction
//   credits   create a batch on a workspace without credits
//   auth      calls with a token the server does not know
import { readFileSync, writeFileSync } from "node:fs";
import { buildApi } from "@cargo-ai/api";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, cur, i, all) => {
    if (cur.startsWith("--")) acc.push([cur.slice(2), all[i + 1]]);
    return acc;
  }, []),
);
const baseUrl = args["base-url"];
const token = process.env.CARGO_DRIVER_TOKEN;  // never a command-line argument (ps shows those)
const scenario = args.scenario;
const stateFile = args.state;
const workspaceUuid = args["workspace-uuid"];
if (!baseUrl || !token || !scenario) {
  console.error("usage: CARGO_DRIVER_TOKEN=T node driver.mjs --base-url URL --scenario NAME [--state FILE]");
  process.exit(2);
}

// ------------------------------------------------------------------ wire capture
let currentWire = null;
const recordingFetch = async (input, init = {}) => {
  const exchange = {
    method: init.method ?? "GET",
    url: String(input),
    requestHeaders: { ...(init.headers ?? {}) },
    requestBody: typeof init.body === "string" ? init.body : init.body === undefined ? null : "<non-text body>",
  };
  if (currentWire !== null) currentWire.push(exchange);
  const response = await fetch(input, init);
  const text = await response.clone().text();
  exchange.status = response.status;
  exchange.responseText = text;
  exchange.responseContentType = response.headers.get("content-type");
  return response;
};

const api = buildApi({
  baseUrl,
  accessToken: token,
  ...(workspaceUuid ? { workspaceUuid } : {}),
  transport: { fetch: recordingFetch },
});

const calls = {};
const describeError = (e) => {
  if (e !== null && typeof e === "object") {
    return {
      type: e.type ?? e.name ?? null,
      status: e.status ?? null,
      reason: e.reason ?? null,
      message: e.message ?? null,
      data: e.data ?? null,
      thrown: "error-object",
    };
  }
  // The official client throws the bare message string for nested `dataError` reasons
  // (REFERENCE.md 2.6); `undefined` when dataError is missing or its reason is unknown.
  return { type: null, status: null, reason: null, message: e ?? null, data: null, thrown: typeof e };
};

async function call(name, fn) {
  currentWire = [];
  const entry = { wire: currentWire };
  try {
    const result = await fn();
    entry.ok = true;
    entry.result = result === undefined ? null : result;
  } catch (e) {
    entry.ok = false;
    entry.error = describeError(e);
  }
  currentWire = null;
  calls[name] = entry;
  return entry;
}

// Plain download of a URL returned by the API: no token, like any presigned-URL consumer.
async function fetchFile(name, url) {
  const entry = { url };
  try {
    const response = await fetch(url);
    entry.status = response.status;
    entry.contentType = response.headers.get("content-type");
    entry.text = await response.text();
  } catch (e) {
    entry.error = String(e);
  }
  calls[name] = entry;
  return entry;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = new Set(["success", "error", "cancelled", "skipped"]);
const MISSING_UUID = "00000000-0000-4000-8000-000000000000";
const byName = (list, name) => list.find((x) => x.name === name);
const emptyFilter = { conjonction: "and", groups: [] };

// ------------------------------------------------------------------ shared lookups
async function discover() {
  const plays = (await call("plays.list", () => api.orchestration.play.list())).result?.plays ?? [];
  const tools = (await call("tools.list", () => api.orchestration.tool.all())).result?.tools ?? [];
  const segments = (await call("segments.list", () => api.segmentation.segment.all())).result?.segments ?? [];
  const play = byName(plays, "Score inbound companies") ?? plays[0];
  const tool = byName(tools, "Enrich company") ?? tools[0];
  // a standalone segment on the play's model (segment batches must not use a play's own segment)
  const standalone =
    segments.find((s) => s.fromPlay === false && s.modelUuid === play?.modelUuid) ??
    segments.find((s) => s.fromPlay === false);
  const playSegment = segments.find((s) => s.fromPlay === true && s.uuid === play?.segmentUuid) ??
    segments.find((s) => s.fromPlay === true);
  return { plays, tools, segments, play, tool, standalone, playSegment };
}

async function toolRecords(tool, n) {
  const deployed = await call("releases.deployed.tool", () =>
    api.orchestration.release.getDeployed({ workflowUuid: tool.workflowUuid }),
  );
  const slugs = (deployed.result?.release?.formFields ?? []).map((f) => f.slug);
  const fields = slugs.length > 0 ? slugs : ["domain", "company_name"];
  return Array.from({ length: n }, (_, i) =>
    Object.fromEntries(
      fields.map((slug) => [
        slug,
        slug === "domain" ? `conformance-${i + 1}.example.com` : `Conformance ${slug} ${i + 1}`,
      ]),
    ),
  );
}

// ------------------------------------------------------------------ scenarios
async function catalog() {
  const ctx = await discover();
  const { play, tool, standalone, playSegment } = ctx;
  await call("workflows.list", () => api.orchestration.workflow.all());
  await call("plays.list.enabled", () => api.orchestration.play.list({ isEnabled: true }));
  await call("plays.list.byModel", () => api.orchestration.play.list({ modelUuid: play.modelUuid }));
  await call("plays.list.bySegment", () => api.orchestration.play.list({ segmentUuid: play.segmentUuid }));
  await call("plays.get", () => api.orchestration.play.get(play.uuid));
  await call("plays.get.missing", () => api.orchestration.play.get(MISSING_UUID));
  await call("tools.get", () => api.orchestration.tool.get(tool.uuid));
  await call("tools.get.missing", () => api.orchestration.tool.get(MISSING_UUID));
  const deployed = await call("releases.deployed", () =>
    api.orchestration.release.getDeployed({ workflowUuid: play.workflowUuid }),
  );
  await call("releases.deployed.tool", () =>
    api.orchestration.release.getDeployed({ workflowUuid: tool.workflowUuid }),
  );
  await call("releases.deployed.missing", () =>
    api.orchestration.release.getDeployed({ workflowUuid: MISSING_UUID }),
  );
  const releaseUuid = deployed.result?.release?.uuid;
  await call("releases.get", () => api.orchestration.release.get(releaseUuid));
  const models = (await call("models.list", () => api.storage.model.all())).result?.models ?? [];
  await call("segments.get", () => api.segmentation.segment.get(standalone.uuid));

  // segments/fetch: everything, then a real filter built from a value that exists
  const model = models.find((m) => m.uuid === play.modelUuid) ?? models[0];
  const all = await call("segments.fetch.all", () =>
    api.segmentation.segment.fetch({ modelUuid: model.uuid, filter: emptyFilter, fetchingLimit: 5, fetchingOffset: 0 }),
  );
  const first = all.result?.records?.[0] ?? {};
  const stringColumns = (all.result?.columns ?? []).filter((c) => c.type === "string" && !c.slug.startsWith("_"));
  const column = stringColumns.find((c) => typeof first[c.slug] === "string" && first[c.slug] !== "");
  const filterColumn = column?.slug ?? "domain";
  const filterValue = first[filterColumn] ?? "";
  const realFilter = {
    conjonction: "and",
    groups: [
      {
        conjonction: "or",
        conditions: [
          { kind: "string", columnSlug: filterColumn, operator: "is", values: [filterValue] },
          { kind: "string", columnSlug: filterColumn, operator: "is", values: ["no-such-value-" + Date.now()] },
        ],
      },
    ],
  };
  await call("segments.fetch.filter", () =>
    api.segmentation.segment.fetch({ modelUuid: model.uuid, filter: realFilter, fetchingLimit: 50 }),
  );
  const numberColumn = (all.result?.columns ?? []).find((c) => c.type === "number" && typeof first[c.slug] === "number");
  const numberFilter = numberColumn
    ? {
        conjonction: "and",
        groups: [{ conjonction: "and", conditions: [{ kind: "number", columnSlug: numberColumn.slug, operator: "greaterThan", value: first[numberColumn.slug] }] }],
      }
    : null;
  if (numberFilter) {
    await call("segments.fetch.number", () =>
      api.segmentation.segment.fetch({ modelUuid: model.uuid, filter: numberFilter, fetchingLimit: 500 }),
    );
  }
  await call("changes.list", () => api.segmentation.change.list({ segmentUuid: standalone.uuid }));
  await call("changes.list.all", () => api.segmentation.change.list({}));
  const to = new Date();
  const from = new Date(to.getTime() - 30 * 24 * 3600 * 1000);
  const day = (d) => d.toISOString().slice(0, 10);
  await call("billing.usage", () => api.billing.usage.getMetrics({ from: day(from), to: day(to) }));
  await call("billing.usage.grouped", () =>
    api.billing.usage.getMetrics({ from: day(from), to: day(to), groupBy: "workflow_uuid", unit: "billing.credits" }),
  );
  await call("billing.subscription", () => api.billing.subscription.get());
  const ws = await call("workspace.current", () => api.workspaceManagement.workspace.getCurrent());

  // storage: one model by uuid (+ modelNotFound), datasets; the user the token acts as
  await call("models.get", () => api.storage.model.get(model.uuid));
  await call("models.get.missing", () => api.storage.model.get(MISSING_UUID));
  await call("datasets.list", () => api.storage.dataset.all());
  await call("users.current", () => api.userManagement.user.getCurrent());
  // the same client built WITH a workspace UUID: getCurrent user is flagged "without
  // workspace" (no selected-workspace-uuid header), other calls carry it (REFERENCE.md 2.2)
  const wsUuid = ws.result?.workspace?.uuid;
  if (wsUuid) {
    const apiWs = buildApi({ baseUrl, accessToken: token, workspaceUuid: wsUuid, transport: { fetch: recordingFetch } });
    await call("users.current.withWorkspace", () => apiWs.userManagement.user.getCurrent());
    await call("workspace.current.withWorkspace", () => apiWs.workspaceManagement.workspace.getCurrent());
  }

  // error cases of batch creation
  const records = await toolRecords(tool, 2);
  await call("batches.create.recordsToPlay", () =>
    api.orchestration.batch.create({ workflowUuid: play.workflowUuid, data: { kind: "records", records } }),
  );
  await call("batches.create.unknownWorkflow", () =>
    api.orchestration.batch.create({ workflowUuid: MISSING_UUID, data: { kind: "records", records } }),
  );
  await call("batches.create.playSegment", () =>
    api.orchestration.batch.create({
      workflowUuid: play.workflowUuid,
      data: { kind: "segment", segmentUuid: playSegment.uuid },
    }),
  );
  return {
    play,
    tool,
    model: { uuid: model.uuid, slug: model.slug },
    standalone: { uuid: standalone.uuid, modelUuid: standalone.modelUuid },
    playSegment: { uuid: playSegment.uuid, fromPlay: playSegment.fromPlay },
    realFilter,
    numberColumn: numberColumn?.slug ?? null,
    numberThreshold: numberColumn ? first[numberColumn.slug] : null,
    filterColumn,
    filterValue,
  };
}

async function start() {
  const { play, tool, standalone } = await discover();
  const filter = {
    conjonction: "and",
    groups: [{ conjonction: "and", conditions: [{ kind: "string", columnSlug: "domain", operator: "isNotNull" }] }],
  };
  const some = await call("segments.fetch.forIds", () =>
    api.segmentation.segment.fetch({ modelUuid: play.modelUuid, filter: emptyFilter, fetchingLimit: 3 }),
  );
  const ids = (some.result?.records ?? []).map((r) => r._id);
  const records = await toolRecords(tool, 3);
  const created = {};
  const create = async (key, payload) => {
    const entry = await call(`batches.create.${key}`, () => api.orchestration.batch.create(payload));
    created[key] = { uuid: entry.result?.batch?.uuid, payload };
  };
  await create("playFilter", { workflowUuid: play.workflowUuid, data: { kind: "filter", modelUuid: play.modelUuid, filter, limit: 7 } });
  await create("playSegment", { workflowUuid: play.workflowUuid, data: { kind: "segment", segmentUuid: standalone.uuid } });
  await create("playRecordIds", { workflowUuid: play.workflowUuid, data: { kind: "recordIds", modelUuid: play.modelUuid, ids } });
  await create("toolRecords", { workflowUuid: tool.workflowUuid, data: { kind: "records", records } });
  await create("toCancel", { workflowUuid: play.workflowUuid, data: { kind: "filter", modelUuid: play.modelUuid, limit: 3 } });

  for (const [key, { uuid }] of Object.entries(created)) {
    await call(`batches.get.${key}.unfinished`, () => api.orchestration.batch.get(uuid));
  }
  await call("batches.download.unfinished", () => api.orchestration.batch.download({ uuid: created.playFilter.uuid }));
  await call("batches.cancel.unfinished", () => api.orchestration.batch.cancel(created.toCancel.uuid));
  await call("batches.get.toCancel.afterCancel", () => api.orchestration.batch.get(created.toCancel.uuid));
  await call("batches.list.unfinished", () =>
    api.orchestration.batch.list({ workflowUuids: [play.workflowUuid, tool.workflowUuid], statuses: ["pending", "syncing", "querying", "running"] }),
  );
  // a single tool run, cancelled before it starts (the clock stands still): runs.cancel takes uuids
  const single = await call("runs.create.toCancel", () =>
    api.orchestration.run.create({ workflowUuid: tool.workflowUuid, data: records[0] ?? {} }),
  );
  const singleRun = { uuid: single.result?.run?.uuid ?? null, workflowUuid: tool.workflowUuid };
  await call("runs.cancel", () => api.orchestration.run.cancel({ workflowUuid: tool.workflowUuid, uuids: [singleRun.uuid] }));
  await call("runs.get.cancelling", () => api.orchestration.run.get(singleRun.uuid));
  return { play, tool, standalone, ids, records, created, singleRun };
}

async function finish(state) {
  const { play, tool, created } = state;
  const batches = {};
  for (const [key, { uuid }] of Object.entries(created)) {
    batches[key] = (await call(`batches.get.${key}.finished`, () => api.orchestration.batch.get(uuid))).result?.batch;
  }
  await call("batches.list.finished", () =>
    api.orchestration.batch.list({ workflowUuids: [play.workflowUuid, tool.workflowUuid], statuses: ["success", "error", "cancelled"] }),
  );
  await call("batches.list.success.play", () =>
    api.orchestration.batch.list({ workflowUuids: [play.workflowUuid], statuses: ["success"], limit: 50, offset: 0 }),
  );
  await call("batches.list.all", () => api.orchestration.batch.list({}));
  await call("batches.cancel.finished", () => api.orchestration.batch.cancel(created.playFilter.uuid));

  for (const key of ["playFilter", "playSegment", "playRecordIds", "toolRecords"]) {
    const d = await call(`batches.download.${key}`, () => api.orchestration.batch.download({ uuid: created[key].uuid }));
    if (d.ok && d.result?.url) await fetchFile(`file.batch.${key}`, d.result.url);
  }
  // releases: download with an explicit output node slug (last node of the deployed release)
  const release = (await call("releases.deployed.play", () =>
    api.orchestration.release.getDeployed({ workflowUuid: play.workflowUuid }),
  )).result?.release;
  const slugs = (release?.nodes ?? []).map((n) => n.slug);
  const lastSlug = slugs[slugs.length - 1];
  const ds = await call("batches.download.playFilter.outputNodeSlug", () =>
    api.orchestration.batch.download({ uuid: created.playFilter.uuid, outputNodeSlug: lastSlug }),
  );
  if (ds.ok && ds.result?.url) await fetchFile("file.batch.playFilter.outputNodeSlug", ds.result.url);

  if (state.singleRun?.uuid) await call("runs.get.cancelled", () => api.orchestration.run.get(state.singleRun.uuid));

  const batchUuid = created.playFilter.uuid;
  await call("runs.list", () => api.orchestration.run.list({ workflowUuid: play.workflowUuid, batchUuid, limit: 100, offset: 0 }));
  await call("runs.list.page", () => api.orchestration.run.list({ workflowUuid: play.workflowUuid, batchUuid, limit: 2, offset: 1 }));
  await call("runs.list.error", () => api.orchestration.run.list({ workflowUuid: play.workflowUuid, batchUuid, statuses: ["error"] }));
  await call("runs.count", () => api.orchestration.run.count({ workflowUuid: play.workflowUuid, batchUuid }));
  await call("runs.count.success", () => api.orchestration.run.count({ workflowUuid: play.workflowUuid, batchUuid, statuses: ["success"] }));
  await call("runs.metrics", () => api.orchestration.run.getMetrics({ workflowUuid: play.workflowUuid, batchUuid }));
  // one run by uuid: a successful one from runs.list (and a failed one, if any failed)
  const listedRuns = calls["runs.list"]?.result?.runs ?? [];
  const okRun = listedRuns.find((r) => r.status === "success") ?? listedRuns[0];
  const errRun = listedRuns.find((r) => r.status === "error");
  if (okRun) await call("runs.get", () => api.orchestration.run.get(okRun.uuid));
  if (errRun) await call("runs.get.error", () => api.orchestration.run.get(errRun.uuid));
  // the user the token acts as (batches created with this token carry its uuid)
  await call("users.current", () => api.userManagement.user.getCurrent());
  const csv = await call("runs.downloadOutputs.csv", () =>
    api.orchestration.run.downloadOutputs({ workflowUuid: play.workflowUuid, batchUuid, format: "csv" }),
  );
  if (csv.ok && csv.result?.url) await fetchFile("file.runs.csv", csv.result.url);
  const json = await call("runs.downloadOutputs.json", () =>
    api.orchestration.run.downloadOutputs({ workflowUuid: play.workflowUuid, batchUuid, format: "json", outputNodeSlug: lastSlug }),
  );
  if (json.ok && json.result?.url) await fetchFile("file.runs.json", json.result.url);
  await call("runs.downloadOutputs.none", () =>
    api.orchestration.run.downloadOutputs({ workflowUuid: play.workflowUuid, batchUuid: MISSING_UUID, format: "csv" }),
  );
  return { batches, lastSlug, runUuid: okRun?.uuid ?? null, errorRunUuid: errRun?.uuid ?? null };
}

async function lifecycle() {
  const plays = (await call("plays.list", () => api.orchestration.play.list())).result?.plays ?? [];
  const play = byName(plays, "Score inbound companies") ?? plays[0];
  const created = await call("batches.create", () =>
    api.orchestration.batch.create({
      workflowUuid: play.workflowUuid,
      data: { kind: "filter", modelUuid: play.modelUuid, filter: emptyFilter, limit: 12 },
    }),
  );
  const uuid = created.result?.batch?.uuid;
  const seen = [];
  let batch = created.result?.batch;
  const deadline = Date.now() + Number(args["timeout-ms"] ?? 90000);
  let polls = 0;
  while (uuid && Date.now() < deadline) {
    const got = await call(`batches.get.poll`, () => api.orchestration.batch.get(uuid));
    polls += 1;
    batch = got.result?.batch;
    if (!got.ok || batch === undefined) break;
    if (seen[seen.length - 1] !== batch.status) seen.push(batch.status);
    if (TERMINAL.has(batch.status)) break;
    await sleep(100);
  }
  const download = await call("batches.download", () => api.orchestration.batch.download({ uuid }));
  if (download.ok && download.result?.url) await fetchFile("file.batch", download.result.url);
  return { play, batch, statusesSeen: seen, polls };
}

async function pollBatch(name, uuid) {
  const deadline = Date.now() + Number(args["timeout-ms"] ?? 90000);
  let batch;
  while (uuid && Date.now() < deadline) {
    const got = await call(name, () => api.orchestration.batch.get(uuid));
    batch = got.result?.batch;
    if (!got.ok || batch === undefined || TERMINAL.has(batch.status)) break;
    await sleep(100);
  }
  return batch;
}

async function fidelity() {
  const { play, tool } = await discover();
  // 1. a single-record run of a tool, polled with run get until terminal; a play cannot
  const created = await call("runs.create", () =>
    api.orchestration.run.create({ workflowUuid: tool.workflowUuid, data: { domain: "single.example.com" } }),
  );
  const runUuid = created.result?.run?.uuid;
  const runStatuses = [];
  const deadline = Date.now() + Number(args["timeout-ms"] ?? 90000);
  while (runUuid && Date.now() < deadline) {
    const got = await call("runs.get.poll", () => api.orchestration.run.get(runUuid));
    const status = got.result?.run?.status;
    if (runStatuses[runStatuses.length - 1] !== status) runStatuses.push(status);
    if (!got.ok || TERMINAL.has(status)) break;
    await sleep(100);
  }
  await call("runs.create.play", () =>
    api.orchestration.run.create({ workflowUuid: play.workflowUuid, data: { domain: "x.example.com" } }),
  );

  // 2. upload a CSV, list its columns, run a file batch over it (one run per data row)
  const csvText = "Website,Company\nfile-1.example.com,File One\nfile-2.example.com,File Two\nfile-3.example.com,File Three\n";
  let uploaded = null;
  await call("files.upload", async () => {
    let failed = false;
    await api.workspaceManagement.file.upload({
      file: new File([csvText], "fidelity.csv", { type: "text/csv" }),
      onProgress: () => {},
      onComplete: (f) => { uploaded = f; },
      onError: () => { failed = true; },
    });
    if (failed) throw new Error("upload failed (onError)");
    return uploaded;
  });
  await call("files.listColumns", () => api.workspaceManagement.file.listColumns({ s3Filename: uploaded?.s3Filename }));
  const fileBatch = await call("batches.create.file", () =>
    api.orchestration.batch.create({
      workflowUuid: tool.workflowUuid,
      data: { kind: "file", s3Filename: uploaded?.s3Filename, mappings: { domain: "Website", company_name: "Company" } },
    }),
  );
  const fileDone = await pollBatch("batches.get.file", fileBatch.result?.batch?.uuid);
  const fd = await call("batches.download.file", () => api.orchestration.batch.download({ uuid: fileDone?.uuid }));
  if (fd.ok && fd.result?.url) await fetchFile("file.batch.file", fd.result.url);

  // 3. a tool batch whose runs partly fail (no domain): one row per input record
  const records = [
    { domain: "ok-1.example.com", company_name: "Ok One" },
    { company_name: "No Domain" },
    { domain: "ok-2.example.com", company_name: "Ok Two" },
    { domain: "", company_name: "Empty Domain" },
  ];
  const failing = await call("batches.create.failing", () =>
    api.orchestration.batch.create({ workflowUuid: tool.workflowUuid, data: { kind: "records", records } }),
  );
  const failingDone = await pollBatch("batches.get.failing", failing.result?.batch?.uuid);
  const dl = await call("batches.download.failing", () => api.orchestration.batch.download({ uuid: failingDone?.uuid }));
  if (dl.ok && dl.result?.url) await fetchFile("file.batch.failing", dl.result.url);
  const outs = await call("runs.downloadOutputs.failing", () =>
    api.orchestration.run.downloadOutputs({ workflowUuid: tool.workflowUuid, batchUuid: failingDone?.uuid, format: "json" }),
  );
  if (outs.ok && outs.result?.url) await fetchFile("file.outputs.failing", outs.result.url);
  const outsCsv = await call("runs.downloadOutputs.failing.csv", () =>
    api.orchestration.run.downloadOutputs({ workflowUuid: tool.workflowUuid, batchUuid: failingDone?.uuid }),
  );
  if (outsCsv.ok && outsCsv.result?.url) await fetchFile("file.outputs.failing.csv", outsCsv.result.url);

  // 4. usage units: the three, an invalid one, none (interleaved)
  const day = (d) => d.toISOString().slice(0, 10);
  const from = new Date(Date.now() - 86400000);
  const to = new Date(Date.now() + 86400000);
  for (const unit of ["billing.credits", "orchestration.executions", "storage.records", "credits"]) {
    await call(`billing.usage.${unit}`, () => api.billing.usage.getMetrics({ from: day(from), to: day(to), unit }));
  }
  await call("billing.usage.noUnit", () => api.billing.usage.getMetrics({ from: day(from), to: day(to) }));
  await call("billing.subscription", () => api.billing.subscription.get());

  // 5. an unknown body key; 6. a misspelled conjonction (dropped: empty 200)
  await call("runs.list.unknownKey", () =>
    api.orchestration.run.list({ workflowUuid: tool.workflowUuid, notAKey: true }),
  );
  await call("segments.fetch.conjunction", () =>
    api.segmentation.segment.fetch({
      modelUuid: play.modelUuid,
      filter: { conjunction: "and", groups: [{ conjunction: "and", conditions: [{ kind: "string", columnSlug: "domain", operator: "isNotNull" }] }] },
    }),
  );
  await call("segments.fetch.conjonction", () =>
    api.segmentation.segment.fetch({
      modelUuid: play.modelUuid,
      filter: { conjonction: "and", groups: [{ conjonction: "and", conditions: [{ kind: "string", columnSlug: "domain", operator: "isNotNull" }] }] },
    }),
  );
  return { play, tool, runUuid, runStatuses, uploaded, csvText, records, fileBatch: fileDone, failingBatch: failingDone };
}

async function credits() {
  const { play, tool } = await discover();
  const records = await toolRecords(tool, 2);
  await call("batches.create.noCredits.play", () =>
    api.orchestration.batch.create({ workflowUuid: play.workflowUuid, data: { kind: "filter", modelUuid: play.modelUuid, limit: 2 } }),
  );
  await call("batches.create.noCredits.tool", () =>
    api.orchestration.batch.create({ workflowUuid: tool.workflowUuid, data: { kind: "records", records } }),
  );
  await call("billing.subscription", () => api.billing.subscription.get());
  return {};
}

async function auth() {
  await call("workspace.current", () => api.workspaceManagement.workspace.getCurrent());
  await call("plays.list", () => api.orchestration.play.list());
  await call("batches.create", () =>
    api.orchestration.batch.create({ workflowUuid: MISSING_UUID, data: { kind: "records", records: [{}] } }),
  );
  return {};
}

// Redeploys (REFERENCE 3.8): draft get -> update -> deploy of a tool, then the deployed release and the
// workflow's deployedRelease; a batch created before the deploy keeps its release.
async function releases() {
  const { tool } = await discover();
  const wf = tool.workflowUuid;
  const records = await toolRecords(tool, 1);
  const before = await call("releases.deployed.before", () => api.orchestration.release.getDeployed({ workflowUuid: wf }));
  const early = await call("batches.create.beforeDeploy", () =>
    api.orchestration.batch.create({ workflowUuid: wf, data: { kind: "records", records } }),
  );
  const draft = await call("draft.get", () => api.orchestration.draftRelease.get({ workflowUuid: wf }));
  const nodes = (draft.result?.release?.nodes ?? []).map((n, i) =>
    i === 1 ? { ...n, config: { ...(n.config ?? {}), reveal: "full" } } : n,
  );
  await call("draft.update", () => api.orchestration.draftRelease.update({ workflowUuid: wf, nodes }));
  const formFields = draft.result?.release?.formFields ?? null;
  const deployed = await call("draft.deploy", () =>
    api.orchestration.draftRelease.deploy({ workflowUuid: wf, nodes, formFields, description: "conformance redeploy" }),
  );
  await call("releases.deployed.after", () => api.orchestration.release.getDeployed({ workflowUuid: wf }));
  await call("workflows.list.after", () => api.orchestration.workflow.all());
  await call("batches.get.beforeDeploy", () => api.orchestration.batch.get(early.result?.batch?.uuid));
  const late = await call("batches.create.afterDeploy", () =>
    api.orchestration.batch.create({ workflowUuid: wf, data: { kind: "records", records } }),
  );
  await call("draft.get.missing", () => api.orchestration.draftRelease.get({ workflowUuid: MISSING_UUID }));
  await call("draft.deploy.invalidNodes", () =>
    api.orchestration.draftRelease.deploy({ workflowUuid: wf, nodes: [{ name: "no slug" }], formFields }),
  );
  await call("draft.deploy.noFormFields", () =>
    api.orchestration.draftRelease.deploy({ workflowUuid: wf, nodes, formFields: null }),
  );
  return {
    workflowUuid: wf,
    beforeUuid: before.result?.release?.uuid,
    deployedUuid: deployed.result?.release?.uuid,
    lateBatchRelease: late.result?.batch?.releaseUuid,
  };
}

const scenarios = { catalog, start, finish, lifecycle, fidelity, credits, auth, releases };
if (!(scenario in scenarios)) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
let context = null;
let fatal = null;
try {
  const state = stateFile ? JSON.parse(readFileSync(stateFile, "utf8")) : undefined;
  context = await scenarios[scenario](state);
} catch (e) {
  fatal = { message: String(e?.message ?? e), stack: String(e?.stack ?? "") };
}
const output = JSON.stringify({ scenario, baseUrl, context, fatal, calls });
if (args.out) writeFileSync(args.out, output);
else process.stdout.write(output);
