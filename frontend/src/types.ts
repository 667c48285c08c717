// The API's JSON shapes, by the names the dashboard uses. Every shape is
// generated from the API contract (shared/docs/openapi.json, itself generated
// from the server's code) into api-types.ts by `npm run generate:types`; the
// build fails when api-types.ts is not what the contract gives.

import type { components } from './api-types';

type Schemas = components['schemas'];

/** A page of any list: `{"items": [...], "next_cursor": "..." | null}`. */
export type Page<T> = Omit<Schemas['Page_Pull'], 'items'> & { items: T[] };

export type Health = Schemas['Health'];
export type Repo = Schemas['Repo'];
export type Branch = Schemas['Branch'];
export type Pull = Schemas['Pull'];
export type Review = Schemas['Review'];
export type PullDetail = Schemas['PullDetail'];
export type Team = Schemas['Team'];
export type Commit = Schemas['Commit'];
export type WorkflowRun = Schemas['WorkflowRun'];
export type Delivery = Schemas['Delivery'];
export type Target = Schemas['Target'];
export type Gap = Schemas['Gap'];
export type CheckRun = Schemas['CheckRun'];
export type Job = Schemas['Job'];
export type Integrity = Schemas['Integrity'];

// Search.
export type DocKind = Schemas['DocKind'];
export type Segment = Schemas['Segment'];
export type SearchHit = Schemas['SearchHit'];
export type SearchResults = Schemas['SearchResults'];
export type Facets = Schemas['Facets'];
export type FacetCount = Schemas['FacetCount'];

// Metrics.
export type Window = Schemas['Window'];
export type Distribution = Schemas['Distribution'];
export type WeekCount = Schemas['WeekCount'];
export type OpenByAge = Schemas['OpenByAge'];
export type PullFlowGroup = Schemas['PullFlowGroup'];
export type PullFlowMetrics = Schemas['PullFlowMetrics'];
export type PullWait = Schemas['PullWait'];
export type RunStats = Schemas['RunStats'];
export type JobStats = Schemas['JobStats'];
export type CiGroup = Schemas['CiGroup'];
export type CiMetrics = Schemas['CiMetrics'];
export type DoraGroup = Schemas['DoraGroup'];
export type DoraMetrics = Schemas['DoraMetrics'];
export type JobCounts = Schemas['JobCounts'];
export type RepoHealth = Schemas['RepoHealth'];
export type DataHealth = Schemas['DataHealth'];
