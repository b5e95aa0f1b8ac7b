/**
 * The Gearman functions of the sample system, shared by the apps that call them and the apps that
 * serve them (in a Nest monorepo this would be a library under libs/).
 */
export const Patterns = {
  /** users microservice (worker app): request/response. */
  RegisterUser: 'users.register',
  /** email microservice (worker app): background job, fired with emit(). */
  SendWelcomeEmail: 'email.welcome',
  ListOutbox: 'email.outbox',
  /** orders microservice (worker app): calls the inventory app through Gearman. */
  PlaceOrder: 'orders.place',
  /** inventory microservice (inventory app). */
  ReserveStock: 'inventory.reserve',
  /** reports (worker app): streams sections with progress. */
  BuildReport: 'reports.build',
  /** batch (worker app): background jobs queued with priorities. */
  ProcessBatchItem: 'batch.process',
  BatchProgress: 'batch.progress',
  /** quotes (worker app): a slow computation that concurrent callers share through a unique id. */
  PriceQuote: 'quotes.price',
  /** word counts (worker app, counter app): one sub-job per chunk of a text, then one gather job. */
  CountWords: 'text.count-words',
  MergeCounts: 'text.merge-counts',
} as const;

export interface NewUser {
  name: string;
  email: string;
}

export interface User extends NewUser {
  id: string;
  registeredAt: string;
}

export interface SentEmail {
  to: string;
  subject: string;
  sentAt: string;
}

export interface Outbox {
  file: string;
  emails: SentEmail[];
}

export interface OrderRequest {
  sku: string;
  quantity: number;
}

export interface StockReservation {
  sku: string;
  reserved: number;
  remaining: number;
}

export interface Order {
  id: string;
  sku: string;
  quantity: number;
  reservation: StockReservation;
}

/** The error body a microservice throws (as an RpcException) for a request it refuses. */
export interface ServiceError {
  code: 'OUT_OF_STOCK' | 'UNKNOWN_SKU' | 'INVALID';
  message: string;
}

export interface ReportRequest {
  name: string;
  sections: number;
}

export interface ReportSection {
  section: number;
  of: number;
  title: string;
  rows: { label: string; value: number }[];
}

export interface ReportSummary {
  name: string;
  sections: number;
  total: number;
}

export type Priority = 'high' | 'normal' | 'low';

export interface BatchItem {
  batchId: string;
  name: string;
  priority: Priority;
}

export interface BatchProgress {
  batchId: string;
  /** Item names in the order the worker started them. */
  started: string[];
}

export interface Quote {
  symbol: string;
  price: number;
  /** Which computation produced it: callers that share a job share this number. */
  computation: number;
}

/** One chunk of a text to count, as the gateway splits it. */
export interface TextChunk {
  /** Which chunk of the text. */
  chunk: number;
  text: string;
}

/** The words of one chunk, counted. */
export interface ChunkCount {
  chunk: number;
  words: number;
  counts: Record<string, number>;
}

/** The gathered result of a word count. */
export interface WordCount {
  chunks: number;
  words: number;
  distinct: number;
  top: { word: string; count: number }[];
}

/** What the gateway answers about a word count it started. */
export interface WordCountStatus {
  handle: string;
  state: 'queued' | 'running' | 'completed' | 'failed' | 'unknown';
  /** Chunks counted / chunks. */
  progress: { done: number; of: number };
  result?: WordCount;
  error?: unknown;
}
