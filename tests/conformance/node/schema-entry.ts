// Entry point for ts-json-schema-generator (see ../README.md, "How the schemas are made").
//
// Every exported alias below becomes one top-level JSON Schema definition. Nothing here
// restates a field: each alias points at a declaration shipped in @cargo-ai/types 1.0.56 or
// @cargo-ai/api 1.0.57. Three families:
//
// 1. Domain types, wire form (`Batch`, `Run`, ...): the @cargo-ai/types declarations as-is.
//    They declare nullable fields as `T | null` (the server sends `null`) and dates as `Date`;
//    ts-json-schema-generator maps `Date` to `{"type": "string", "format": "date-time"}`,
//    which is exactly the wire form (ISO-8601 strings; REFERENCE.md 2.8). These are what
//    raw HTTP responses are validated against.
//
// 2. API result types, client view (`GetBatchResult`, ...): the @cargo-ai/api declarations
//    as-is. They are `RecursiveNonNull` + `DateToString` converted, i.e. they describe the
//    body AFTER the official client's `nullToUndefined`. Raw bodies are validated against
//    them after applying the same null->undefined transformation (schemas.py).
//
// 3. Payload types (`CreateBatchPayload`, ...): the @cargo-ai/api declarations as-is, plus
//    `*Body` aliases for the two calls where the client moves a payload key into the path
//    (`Omit<..., "uuid">`), so they describe the JSON body actually on the wire.
//
// The `*Response` aliases wrap domain types in the envelope key of the matching API result
// type (the envelope keys are checked against the API result types at compile time below).

import type {
  BillingTypes,
  OrchestrationTypes,
  SegmentationTypes,
  StorageTypes,
  UserManagementTypes,
  WorkspaceManagementTypes,
} from "@cargo-ai/types";
import type {
  ApiType,
  Billing,
  Orchestration,
  Segmentation,
  Storage,
  UserManagement,
  WorkspaceManagement,
} from "@cargo-ai/api";

// ---------------------------------------------------------------- 1. domain (wire form)
export type Batch = OrchestrationTypes.Batch;
export type BatchData = OrchestrationTypes.BatchData;
export type Run = OrchestrationTypes.Run;
export type RunMetric = OrchestrationTypes.RunMetric;
export type Play = OrchestrationTypes.Play;
export type Tool = OrchestrationTypes.Tool;
export type Workflow = OrchestrationTypes.Workflow;
export type Release = OrchestrationTypes.Release;
export type Segment = SegmentationTypes.Segment;
export type Change = SegmentationTypes.Change;
export type SegmentationColumn = SegmentationTypes.Column;
export type Filter = SegmentationTypes.Filter;
export type Model = StorageTypes.Model;
export type Dataset = StorageTypes.Dataset;
export type UsageMetric = BillingTypes.UsageMetric;
export type EnrichedSubscription = BillingTypes.EnrichedSubscription;
export type Workspace = WorkspaceManagementTypes.Workspace;
export type User = UserManagementTypes.User;

// ---------------------------------------------------------------- 2. API results (client view)
export type ListWorkflowsResult = Orchestration.Api.ListWorkflowsResult;
export type ListPlaysResult = Orchestration.Api.ListPlaysResult;
export type GetPlayResult = Orchestration.Api.GetPlayResult;
export type ListToolsResult = Orchestration.Api.ListToolsResult;
export type GetToolResult = Orchestration.Api.GetToolResult;
export type GetReleaseResult = Orchestration.Api.GetReleaseResult;
export type GetDeployedReleaseResult = Orchestration.Api.GetDeployedReleaseResult;
export type CreateBatchResult = Orchestration.Api.CreateBatchResult;
export type GetBatchResult = Orchestration.Api.GetBatchResult;
export type ListBatchesResult = Orchestration.Api.ListBatchesResult;
export type DownloadBatchResult = Orchestration.Api.DownloadBatchResult;
export type ListRunsResult = Orchestration.Api.ListRunsResult;
export type CountRunsResult = Orchestration.Api.CountRunsResult;
export type GetRunMetricsResult = Orchestration.Api.GetRunMetricsResult;
export type DownloadRunOutputsResult = Orchestration.Api.DownloadRunOutputsResult;
export type GetRunResult = Orchestration.Api.GetRunResult;
export type AllSegmentsResult = Segmentation.Api.AllSegmentsResult;
export type GetSegmentResult = Segmentation.Api.GetSegmentResult;
export type FetchSegmentResult = Segmentation.Api.FetchSegmentResult;
export type ListChangesResult = Segmentation.Api.ListChangesResult;
export type AllModelResult = Storage.Api.AllModelResult;
export type GetModelResult = Storage.Api.GetModelResult;
export type AllDatasetResult = Storage.Api.AllDatasetResult;
export type UsageMetricsResult = Billing.Api.UsageMetricsResult;
export type GetSubscriptionResult = Billing.Api.GetSubscriptionResult;
export type GetCurrentWorkspaceResult = WorkspaceManagement.Api.GetCurrentWorkspaceResult;
export type GetCurrentUserResult = UserManagement.Api.GetCurrentUserResult;

// ---------------------------------------------------------------- 3. payloads
// JSON bodies (POST)
export type CreateBatchPayload = Orchestration.Api.CreateBatchPayload;
export type DownloadBatchPayload = Orchestration.Api.DownloadBatchPayload;
export type DownloadBatchBody = Omit<Orchestration.Api.DownloadBatchPayload, "uuid">;
export type ListRunsPayload = Orchestration.Api.ListRunsPayload;
export type CountRunsPayload = Orchestration.Api.CountRunsPayload;
export type GetRunMetricsPayload = Orchestration.Api.GetRunMetricsPayload;
export type DownloadRunOutputsPayload = Orchestration.Api.DownloadRunOutputsPayload;
export type FetchSegmentPayload = Segmentation.Api.FetchSegmentPayload;
// Query-string payloads (GET; values arrive as strings, see schemas.parse_query)
export type ListPlaysPayload = Orchestration.Api.ListPlaysPayload;
export type ListBatchesPayload = Orchestration.Api.ListBatchesPayload;
export type GetDeployedReleasePayload = Orchestration.Api.GetDeployedReleasePayload;
export type ListChangesPayload = Segmentation.Api.ListChangesPayload;
export type UsageMetricsPayload = Billing.Api.UsageMetricsPayload;

// ---------------------------------------------------------------- wire response envelopes
export type ListWorkflowsResponse = { workflows: Workflow[] };
export type ListPlaysResponse = { plays: Play[] };
export type GetPlayResponse = { play: Play };
export type ListToolsResponse = { tools: Tool[] };
export type GetToolResponse = { tool: Tool };
export type GetReleaseResponse = { release: Release };
export type GetDeployedReleaseResponse = { release: Release };
export type CreateBatchResponse = { batch: Batch };
export type GetBatchResponse = { batch: Batch };
export type ListBatchesResponse = { batches: Batch[] };
export type DownloadBatchResponse = DownloadBatchResult;
export type ListRunsResponse = { runs: Run[]; count: number };
export type CountRunsResponse = CountRunsResult;
export type GetRunMetricsResponse = { runMetrics: RunMetric[] };
export type DownloadRunOutputsResponse = DownloadRunOutputsResult;
// runContext / runComputedConfigs are user data (node outputs / configs keyed by node slug):
// the official client keeps them raw (nulls included), so they are the result type's own.
export type GetRunResponse = {
  run: Run;
  runComputedConfigs: GetRunResult["runComputedConfigs"];
  runContext: GetRunResult["runContext"];
};
export type AllSegmentsResponse = { segments: Segment[] };
export type GetSegmentResponse = { segment: Segment };
export type FetchSegmentResponse = {
  // records are user data: the client keeps them raw as well
  records: FetchSegmentResult["records"];
  count: number;
  columns: SegmentationColumn[];
  isRefreshing: boolean;
};
export type ListChangesResponse = { changes: Change[] };
export type AllModelResponse = { models: Model[] };
export type GetModelResponse = { model: Model };
export type AllDatasetResponse = { datasets: Dataset[] };
export type UsageMetricsResponse = { metrics: UsageMetric[] };
export type GetSubscriptionResponse = { subscription: EnrichedSubscription };
export type GetCurrentWorkspaceResponse = { workspace: Workspace };
export type GetCurrentUserResponse = { user: User };

// Compile-time guard (checked by `tsc -p tsconfig.json` in the test suite): each wire
// envelope, pushed through the official client's own conversion (ApiType), is mutually
// assignable with the official API result type. So the *Response schemas describe exactly
// the official results, before the client's null->undefined conversion.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Match<A, B> = Same<A, B> extends true ? Same<keyof A, keyof B> : false;
type Assert<T extends true> = T;
export type _EnvelopesMatchOfficialResults = [
  Assert<Match<ApiType<ListWorkflowsResponse>, ListWorkflowsResult>>,
  Assert<Match<ApiType<ListPlaysResponse>, ListPlaysResult>>,
  Assert<Match<ApiType<GetPlayResponse>, GetPlayResult>>,
  Assert<Match<ApiType<ListToolsResponse>, ListToolsResult>>,
  Assert<Match<ApiType<GetToolResponse>, GetToolResult>>,
  Assert<Match<ApiType<GetReleaseResponse>, GetReleaseResult>>,
  Assert<Match<ApiType<GetDeployedReleaseResponse>, GetDeployedReleaseResult>>,
  Assert<Match<ApiType<CreateBatchResponse>, CreateBatchResult>>,
  Assert<Match<ApiType<GetBatchResponse>, GetBatchResult>>,
  Assert<Match<ApiType<ListBatchesResponse>, ListBatchesResult>>,
  Assert<Match<ApiType<DownloadBatchResponse>, DownloadBatchResult>>,
  Assert<Match<ApiType<ListRunsResponse>, ListRunsResult>>,
  Assert<Match<ApiType<CountRunsResponse>, CountRunsResult>>,
  Assert<Match<ApiType<GetRunMetricsResponse>, GetRunMetricsResult>>,
  Assert<Match<ApiType<DownloadRunOutputsResponse>, DownloadRunOutputsResult>>,
  Assert<Match<ApiType<GetRunResponse>, GetRunResult>>,
  Assert<Match<ApiType<AllSegmentsResponse>, AllSegmentsResult>>,
  Assert<Match<ApiType<GetSegmentResponse>, GetSegmentResult>>,
  Assert<Match<ApiType<FetchSegmentResponse>, FetchSegmentResult>>,
  Assert<Match<ApiType<ListChangesResponse>, ListChangesResult>>,
  Assert<Match<ApiType<AllModelResponse>, AllModelResult>>,
  Assert<Match<ApiType<GetModelResponse>, GetModelResult>>,
  Assert<Match<ApiType<AllDatasetResponse>, AllDatasetResult>>,
  Assert<Match<ApiType<UsageMetricsResponse>, UsageMetricsResult>>,
  Assert<Match<ApiType<GetSubscriptionResponse>, GetSubscriptionResult>>,
  Assert<Match<ApiType<GetCurrentWorkspaceResponse>, GetCurrentWorkspaceResult>>,
  Assert<Match<ApiType<GetCurrentUserResponse>, GetCurrentUserResult>>,
];
