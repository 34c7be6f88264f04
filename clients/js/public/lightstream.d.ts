// Type declarations of the LightStream JavaScript client
// (lightstream.js, lightstream.min.js: global `LightStream`; lightstream.mjs: ES module).

export declare const version: string;

export type ErrorCodeValue =
  | 'bad_request' | 'auth_failed' | 'token_expired' | 'token_revoked' | 'forbidden' | 'not_found'
  | 'invalid_query' | 'query_too_costly' | 'too_large' | 'slow_consumer' | 'rate_limited'
  | 'unavailable' | 'server_error'
  | 'invalid_argument' | 'not_connected' | 'disconnected' | 'closed' | 'timeout'
  | 'queue_full' | 'connection_failed' | 'protocol_error' | 'callback_failed' | 'unsupported';

export declare const ErrorCode: Readonly<{
  BAD_REQUEST: 'bad_request'; AUTH_FAILED: 'auth_failed'; TOKEN_EXPIRED: 'token_expired';
  TOKEN_REVOKED: 'token_revoked'; FORBIDDEN: 'forbidden'; NOT_FOUND: 'not_found';
  INVALID_QUERY: 'invalid_query'; QUERY_TOO_COSTLY: 'query_too_costly'; TOO_LARGE: 'too_large';
  SLOW_CONSUMER: 'slow_consumer'; RATE_LIMITED: 'rate_limited'; UNAVAILABLE: 'unavailable';
  SERVER_ERROR: 'server_error';
  INVALID_ARGUMENT: 'invalid_argument'; NOT_CONNECTED: 'not_connected'; DISCONNECTED: 'disconnected';
  CLOSED: 'closed'; TIMEOUT: 'timeout'; QUEUE_FULL: 'queue_full'; CONNECTION_FAILED: 'connection_failed';
  PROTOCOL_ERROR: 'protocol_error'; CALLBACK_FAILED: 'callback_failed'; UNSUPPORTED: 'unsupported';
}>;

/** Envelope types `t` of the WebSocket protocol. */
export declare const MessageType: Readonly<{
  AUTH_REQUEST: 1; AUTH_RESPONSE: 2; WEB_TOKEN_REQUEST: 3; WEB_TOKEN_RESPONSE: 4; DATA: 5;
  SUBSCRIBE_REQUEST: 6; SUBSCRIBE_RESPONSE: 7; UNSUBSCRIBE_REQUEST: 8; UNSUBSCRIBE_RESPONSE: 9;
  ERROR: 10; REFRESH_REQUEST: 11; REFRESH_RESPONSE: 12; PUBLISH_RESPONSE: 13;
  SUBSCRIPTION_ENDED: 14; PERMISSIONS_CHANGED: 15;
}>;

/** Permission bits: 1 = write (publish), 2 = read (subscribe). */
export declare const Permission: Readonly<{ WRITE: 1; READ: 2 }>;

export declare const QUERY_LIMITS: Readonly<{ maxDepth: 16; maxNodes: 64; maxBytes: 4096; maxRegexBytes: 256 }>;

/**
 * The protocol rules the client applies on its side (close codes, HTTP
 * statuses, identifier grammar, permission check), as checked against the
 * server's table by the project's tests.
 */
export declare const contract: Readonly<{
  closeCodes: Readonly<Record<string, string>>;
  httpStatuses: Readonly<Record<string, string>>;
  validAppKey(s: unknown): boolean;
  validStream(s: unknown): boolean;
  permits(permissions: ReadonlyArray<{ owner: string; stream: string; permission: number }>,
          owner: string, stream: string, bit: number): boolean;
}>;

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export type Operator =
  | 'equals' | 'notEquals' | 'less' | 'lessEquals' | 'greater' | 'greaterEquals' | 'between'
  | 'in' | 'notIn' | 'contains' | 'startsWith' | 'endsWith' | 'match' | 'exists' | 'notExists'
  | 'isEmpty' | 'type';

export type Expr =
  | { and: Expr[] }
  | { or: Expr[] }
  | { not: Expr }
  | { field: string; op: Operator; value?: Json; ignoreCase?: boolean };

/** The JSON of a query (docs/query.md). */
export interface QueryJSON {
  mode?: 'any' | 'select';
  path?: string;
  where: Expr;
}

export type TypeName = 'string' | 'number' | 'boolean' | 'object' | 'array' | 'null';
export type SubQuery = Query | ((q: Query) => Query) | Expr;

export declare class LightStreamError extends Error {
  constructor(code: ErrorCodeValue | string, message: string, details?: Record<string, unknown>);
  readonly name: 'LightStreamError';
  /** One of ErrorCode. */
  readonly code: ErrorCodeValue | string;
  /** WebSocket close code, when the error ended a connection. */
  readonly closeCode?: number;
  /** True when the error came from the server. */
  readonly server?: boolean;
  readonly cause?: unknown;
}

/** Immutable fluent query builder: every method returns a new Query. */
export declare class Query {
  equals(field: string, value: Json): Query;
  notEquals(field: string, value: Json): Query;
  less(field: string, value: number | string): Query;
  lessEquals(field: string, value: number | string): Query;
  greater(field: string, value: number | string): Query;
  greaterEquals(field: string, value: number | string): Query;
  between(field: string, low: number | string, high: number | string): Query;
  in(field: string, values: Json[]): Query;
  notIn(field: string, values: Json[]): Query;
  contains(field: string, value: Json): Query;
  startsWith(field: string, prefix: string): Query;
  endsWith(field: string, suffix: string): Query;
  /** A PCRE2 pattern, or a RegExp whose only flag may be `i`. */
  match(field: string, pattern: string | RegExp): Query;
  exists(field: string): Query;
  notExists(field: string): Query;
  isEmpty(field: string): Query;
  type(field: string, typeName: TypeName): Query;
  /** Compare the previous condition case-insensitively. */
  ignoreCase(on?: boolean): Query;
  or(...alternatives: SubQuery[] | [SubQuery[]]): Query;
  and(...parts: SubQuery[] | [SubQuery[]]): Query;
  not(part: SubQuery): Query;
  /** Append a raw expression. */
  where(expr: Expr): Query;
  /** Select mode: filter the elements of the array at `path`. */
  select(path: string): Query;
  /** Back to "any" mode. */
  any(): Query;
  readonly mode: 'any' | 'select';
  /** Number of top-level conditions. */
  readonly size: number;
  /** The docs/query.md JSON; throws LightStreamError `invalid_query` when empty or over the limits. */
  toJSON(): QueryJSON;
  toString(): string;
  /** Subscribe the stream this builder came from (stream.query()). */
  subscribe(onMessage: MessageHandler, options?: SubscribeOptions): Promise<Subscription>;
}

export interface MessageMeta {
  owner: string;
  stream: string;
  subscription: Subscription;
  /** The message's offset in the stream's history (when the stream keeps one). */
  offset?: number;
}

export type MessageHandler = (data: any, meta: MessageMeta) => void;

export interface SubscribeOptions {
  /** Called when a live subscription ends because of an error (e.g. permission revoked on reconnect). */
  onError?: (error: LightStreamError) => void;
  /** Resume from a saved position: the server sends what came after it, or says it cannot. */
  since?: HistoryPosition;
  /** A 'subscribed' listener from the start (it also sees the first confirmation). */
  onSubscribed?: (info: SubscribedInfo) => void;
}

export interface PublishOptions {
  /** Resolve once the server's pub/sub fabric accepted the message. */
  ack?: boolean;
}

export declare class Stream {
  readonly owner: string;
  readonly name: string;
  /** Throws `forbidden` without write permission, `not_connected` before open(), `queue_full`, `too_large`. */
  publish(data: Json, options: PublishOptions & { ack: true }): Promise<void>;
  publish(data: Json, options?: PublishOptions): void;
  subscribe(onMessage: MessageHandler, options?: SubscribeOptions): Promise<Subscription>;
  subscribe(query: Query | QueryJSON | null | undefined, onMessage: MessageHandler, options?: SubscribeOptions): Promise<Subscription>;
  query(): Query;
  readonly canRead: boolean;
  readonly canWrite: boolean;
  toString(): string;
}

export declare class Subscription {
  readonly stream: Stream;
  /** The query sent to the server (undefined: every message). */
  readonly query: QueryJSON | undefined;
  /** The server's subscription id on the current connection (changes after a reconnect). */
  readonly id: string | null;
  readonly active: boolean;
  /** Why it ended (e.g. forbidden: the read permission was withdrawn), or null. */
  readonly error: LightStreamError | null;
  /** The stream's history epoch (null: unknown, e.g. the stream keeps no history). */
  readonly epoch: string | null;
  /** The offset of the last message seen, or the stream's latest when it (re)started live. */
  readonly offset: number | null;
  /** After subscribing with `since` (every reconnect): were the missed messages recovered? null before. */
  readonly recovered: boolean | null;
  unsubscribe(): Promise<void>;
  /** 'ended': once, when the subscription ends for good; error is null after unsubscribe(). */
  on(name: 'ended', fn: (error: LightStreamError | null) => void): () => void;
  /** 'subscribed': each time the server confirms it (first time and after every reconnect). */
  on(name: 'subscribed', fn: (info: SubscribedInfo) => void): () => void;
  /** 'recovered': after a reconnect, when every missed message was recovered (they follow in order). */
  on(name: 'recovered', fn: (info: SubscribedInfo) => void): () => void;
  off(name: 'ended', fn: (error: LightStreamError | null) => void): void;
  off(name: 'subscribed', fn: (info: SubscribedInfo) => void): void;
  off(name: 'recovered', fn: (info: SubscribedInfo) => void): void;
}

export interface SubscribedInfo {
  /** true: every message missed while disconnected follows; false: some may be lost; null: no `since` was sent. */
  recovered: boolean | null;
  epoch: string | null;
  offset: number | null;
  /** false the first time, true after a reconnect. */
  resubscribed: boolean;
}

/** A position in a stream's history, to resume from (subscribe options.since). */
export interface HistoryPosition {
  epoch: string;
  offset: number;
}

export interface StreamPermission {
  owner: string;
  stream: string;
  permission: number;
}

export interface SessionInfo {
  /** null over SSE (no session there). */
  connectionId: string | null;
  expiresAt: string | null;
  /** null over SSE: unknown, the server checks each request. */
  permissions: StreamPermission[] | null;
}

export interface WebTokenRequest {
  appKey: string;
  token: string;
  connectionId: string;
}

/** Returns the token (or generatetoken's `data` object) from the application's backend. */
export type TokenSource = () => string | { value: string } | Promise<string | { value: string }>;

/** Returns the HMAC-SHA256 signature, computed by the application's backend. */
export type WebTokenSigner = (request: WebTokenRequest) => string | Promise<string>;

export interface ReconnectOptions {
  initialDelay?: number;
  maxDelay?: number;
  factor?: number;
  /** 0..1: fraction of the delay that is randomized. */
  jitter?: number;
  maxAttempts?: number;
}

export interface ClientOptions {
  /** ws(s):// or http(s):// URL; a bare origin gets /lightstream/websocket. Default: this page's origin. */
  url?: string;
  appKey: string;
  token?: string;
  getToken?: TokenSource;
  onWebToken?: WebTokenSigner;
  reconnect?: false | ReconnectOptions;
  requestTimeout?: number;
  authTimeout?: number;
  maxQueuedMessages?: number;
  maxBufferedBytes?: number;
  maxFrameBytes?: number;
  maxPendingRequests?: number;
  /** Refresh the token with getToken() before it expires (default: when getToken is given). */
  autoRefresh?: boolean;
  refreshLeadMs?: number;
  /** A WebSocket constructor (default: the global one). */
  WebSocket?: new (url: string) => WebSocket;
  /**
   * 'websocket' (default), 'sse' (an EventSource per subscription, HTTP publish), or 'auto':
   * WebSocket, switching to SSE when the WebSocket cannot connect but the gateway answers HTTP.
   */
  transport?: 'websocket' | 'sse' | 'auto';
  /** Base http(s):// URL of the gateway's HTTP endpoints (default: from url). */
  httpUrl?: string;
  /** An EventSource constructor (default: the global one). */
  EventSource?: new (url: string) => EventSource;
  /** A fetch function (default: the global one). */
  fetch?: typeof fetch;
}

export type Transport = 'websocket' | 'sse';

export interface OpenEvent extends SessionInfo {
  reconnected: boolean;
  transport: Transport;
}

export interface CloseEvent {
  code: number;
  reason: string;
  willReconnect: boolean;
  error: LightStreamError | null;
}

export interface ReconnectingEvent {
  attempt: number;
  delay: number;
  error: LightStreamError;
  /** Over SSE: the subscription whose stream is reopened. */
  subscription?: Subscription;
}

export interface ClientEvents {
  open: OpenEvent;
  close: CloseEvent;
  /** A connection attempt starts (attempt 0: the first one). */
  connecting: { attempt: number; transport: Transport };
  /** Authenticated: the same as 'open'. */
  connected: OpenEvent;
  /** The connection ended: the same as 'close'. */
  disconnected: CloseEvent;
  error: LightStreamError;
  reconnecting: ReconnectingEvent;
  refresh: { expiresAt: string | null };
  /** The server changed this connection's permissions (role or account change, refresh). */
  permissionsChanged: { permissions: StreamPermission[] };
  /** The token was revoked or its account deleted (close 4011); reconnects only with getToken. */
  revoked: { error: LightStreamError; willReconnect: boolean };
  /** The transport in use changed (first connection, or 'auto' falling back to SSE). */
  transport: { transport: Transport; reason: string | null };
}

export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export declare class Client {
  constructor(options: ClientOptions);
  readonly appKey: string;
  readonly url: string;
  readonly state: ClientState;
  readonly connectionId: string | null;
  readonly expiresAt: string | null;
  readonly permissions: StreamPermission[];
  readonly token: string | null;
  /** The transport in use; null before the first connection. */
  readonly transport: Transport | null;
  readonly httpUrl: string;
  open(options?: { onWebToken?: WebTokenSigner }): Promise<SessionInfo>;
  close(): Promise<void>;
  on<K extends keyof ClientEvents>(name: K, fn: (event: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(name: K, fn: (event: ClientEvents[K]) => void): void;
  stream(owner: string, name: string): Stream;
  /** null over SSE: permissions are unknown there, the server checks each request. */
  can(owner: string, stream: string, access: 'read' | 'write'): boolean | null;
  refresh(token: string | { value: string }): Promise<{ expiresAt: string | null }>;
}

export declare function createClient(options: ClientOptions): Client;

/** A query builder not bound to a stream. */
export declare function query(): Query;

/** Validate a raw query against docs/query.md; returns it or throws `invalid_query`. */
export declare function validateQuery<T extends QueryJSON>(query: T): T;

declare const LightStream: {
  version: typeof version;
  createClient: typeof createClient;
  query: typeof query;
  validateQuery: typeof validateQuery;
  Client: typeof Client;
  Stream: typeof Stream;
  Subscription: typeof Subscription;
  Query: typeof Query;
  LightStreamError: typeof LightStreamError;
  ErrorCode: typeof ErrorCode;
  MessageType: typeof MessageType;
  Permission: typeof Permission;
  QUERY_LIMITS: typeof QUERY_LIMITS;
  contract: typeof contract;
};
export default LightStream;

type LightStreamNamespace = typeof LightStream;

declare global {
  /** Set by the classic script lightstream.js / lightstream.min.js. */
  const LightStream: LightStreamNamespace;
}
