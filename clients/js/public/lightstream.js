/*! LightStream JavaScript client v0.1.0 | MIT License */
/* Generated from clients/js/src/lightstream.js by clients/js/build.mjs: edit the source. */
(function (root, factory) {
  'use strict';
  var api = factory();
  if (typeof module === 'object' && module && module.exports) {
    module.exports = api;
  } else {
    root.LightStream = api;
  }
}(typeof globalThis !== 'undefined' ? globalThis : typeof self !== 'undefined' ? self : this, function () {
'use strict';

/*
 * LightStream JavaScript client: WebSocket protocol (docs/protocol.md) and query
 * builder (docs/query.md), without dependencies.
 *
 * This file is the single source of public/lightstream.js (classic script,
 * global `LightStream`), public/lightstream.mjs (ES module) and
 * public/lightstream.min.js; build.mjs wraps it. It declares top-level
 * bindings only and ends with the `LightStream` namespace object, which is
 * what every build exports.
 */

const VERSION = '0.1.0';

/* Envelope types of docs/protocol.md. */
const MessageType = Object.freeze({
  AUTH_REQUEST: 1,
  AUTH_RESPONSE: 2,
  WEB_TOKEN_REQUEST: 3,
  WEB_TOKEN_RESPONSE: 4,
  DATA: 5,
  SUBSCRIBE_REQUEST: 6,
  SUBSCRIBE_RESPONSE: 7,
  UNSUBSCRIBE_REQUEST: 8,
  UNSUBSCRIBE_RESPONSE: 9,
  ERROR: 10,
  REFRESH_REQUEST: 11,
  REFRESH_RESPONSE: 12,
  PUBLISH_RESPONSE: 13,
  SUBSCRIPTION_ENDED: 14,
  PERMISSIONS_CHANGED: 15,
});

/* Permission bits of a stream permission (docs/accounts.md). */
const Permission = Object.freeze({ WRITE: 1, READ: 2 });

/*
 * Error codes: the server's (docs/protocol.md) plus the ones this client raises
 * itself. Every error the client reports is a LightStreamError whose
 * `code` is one of these.
 */
const ErrorCode = Object.freeze({
  BAD_REQUEST: 'bad_request',
  AUTH_FAILED: 'auth_failed',
  TOKEN_EXPIRED: 'token_expired',
  TOKEN_REVOKED: 'token_revoked',
  FORBIDDEN: 'forbidden',
  NOT_FOUND: 'not_found',
  INVALID_QUERY: 'invalid_query',
  QUERY_TOO_COSTLY: 'query_too_costly',
  TOO_LARGE: 'too_large',
  SLOW_CONSUMER: 'slow_consumer',
  RATE_LIMITED: 'rate_limited',
  UNAVAILABLE: 'unavailable',
  SERVER_ERROR: 'server_error',
  /* client side */
  INVALID_ARGUMENT: 'invalid_argument',
  NOT_CONNECTED: 'not_connected',
  DISCONNECTED: 'disconnected',
  CLOSED: 'closed',
  TIMEOUT: 'timeout',
  QUEUE_FULL: 'queue_full',
  CONNECTION_FAILED: 'connection_failed',
  PROTOCOL_ERROR: 'protocol_error',
  CALLBACK_FAILED: 'callback_failed',
  UNSUPPORTED: 'unsupported',
});

/*
 * Close codes of docs/protocol.md ("Error codes") and what they mean to this
 * client. tests/browser/contract.test.mjs checks them against the server's
 * one table (common/ls_proto.c); 1006 is the browser's own (no close frame).
 */
const CLOSE_CODE_ERRORS = {
  1001: ['unavailable', 'the server is going away'],
  1006: ['connection_failed', 'the connection was lost'],
  1009: ['too_large', 'a frame was larger than the server accepts'],
  1011: ['server_error', 'the server hit an internal error'],
  1013: ['unavailable', 'the server cannot serve now; try again later'],
  4001: ['auth_failed', 'authentication failed'],
  4002: ['timeout', 'authentication timed out'],
  4003: ['forbidden', 'the server refused an operation'],
  4004: ['bad_request', 'the server rejected a malformed message'],
  4008: ['slow_consumer', 'the client did not read its messages fast enough'],
  4010: ['token_expired', 'the token expired'],
  4011: ['token_revoked', 'the token was revoked or its account deleted'],
  4029: ['rate_limited', 'the client sent more than the server allows; slow down'],
};

/* HTTP statuses of docs/protocol.md ("Error codes") for an answer without a code. */
const HTTP_STATUS_ERRORS = {
  400: 'bad_request', 401: 'auth_failed', 403: 'forbidden', 404: 'not_found', 413: 'too_large',
  429: 'rate_limited', 500: 'server_error', 503: 'unavailable', 504: 'timeout',
};

const DEFAULTS = Object.freeze({
  path: '/lightstream/websocket',
  requestTimeout: 10000,
  authTimeout: 15000,
  maxQueuedMessages: 1000,
  maxBufferedBytes: 4 * 1024 * 1024,
  maxFrameBytes: 64 * 1024,
  maxPendingRequests: 10000,
  refreshLeadMs: 60000,
  reconnect: Object.freeze({
    enabled: true,
    initialDelay: 500,
    maxDelay: 30000,
    factor: 2,
    jitter: 0.5,
    maxAttempts: Infinity,
  }),
});

/* docs/accounts.md names (checked against common/ls_proto.c by a test). */
const APP_KEY_RE = /^[A-Za-z0-9_-]{1,64}$/;
const STREAM_RE = /^[A-Za-z0-9_.-]{1,128}$/;

/* docs/query.md limits, checked here so mistakes surface before sending. */
const QUERY_LIMITS = Object.freeze({
  maxDepth: 16,
  maxNodes: 64,
  maxBytes: 4096,
  maxRegexBytes: 256,
});

/*
 * Client events. The connection's life: 'connecting' ({attempt, transport})
 * when an attempt starts, 'connected' (with 'open', the same session info),
 * 'disconnected' (with 'close': {code, reason, willReconnect, error}),
 * 'reconnecting' ({attempt, delay, error}) when the next attempt is timed.
 */
const EVENTS = ['open', 'close', 'error', 'reconnecting', 'refresh', 'permissionsChanged', 'revoked', 'transport',
  'connecting', 'connected', 'disconnected'];
const SUBSCRIPTION_EVENTS = ['ended', 'subscribed', 'recovered'];

/* Words for close codes outside the error table (the browser's and RFC 6455's own). */
const CLOSE_WORDS = {
  1000: 'the server closed the connection',
  1002: 'the server saw a protocol error',
  1003: 'the server cannot accept this kind of data',
  1007: 'the server received invalid UTF-8',
  1008: 'the server refused the connection (policy)',
  1010: 'the server expected an extension',
  1012: 'the server is restarting',
  1014: 'a gateway in front of the server got a bad answer',
  1015: 'the TLS handshake failed',
};
const TRANSPORTS = ['auto', 'websocket', 'sse'];
const SSE_PATH = '/lightstream/sse/';
const PUBLISH_PATH = '/lightstream/publish/';

const MIN_REFRESH_INTERVAL_MS = 1000;

class LightStreamError extends Error {
  /*
   * code: one of ErrorCode; message: human readable; details (optional)
   * are copied onto the error (e.g. closeCode, cause).
   */
  constructor(code, message, details) {
    super(message);
    this.name = 'LightStreamError';
    this.code = code;
    if (details) {
      for (const key of Object.keys(details)) {
        this[key] = details[key];
      }
    }
  }
}

function fail(code, message, details) {
  throw new LightStreamError(code, message, details);
}

function utf8Length(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) {
      n += 1;
    } else if (c < 0x800) {
      n += 2;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      n += 4; /* surrogate pair */
      i++;
    } else {
      n += 3;
    }
  }
  return n;
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/*
 * Throws invalid_argument unless value is plain JSON (no undefined,
 * functions, symbols, NaN or Infinity), so that what the server receives is
 * what the caller meant.
 */
function checkJsonValue(value, what, depth, code) {
  depth = depth || 0;
  code = code || 'invalid_argument';
  if (depth > 64) {
    fail(code, what + ' is nested too deeply');
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) {
        fail(code, what + ' is not a finite number');
      }
      return;
    case 'object':
      if (value === null) {
        return;
      }
      if (Array.isArray(value)) {
        value.forEach((v, i) => checkJsonValue(v, what + '[' + i + ']', depth + 1, code));
        return;
      }
      if (typeof value.toJSON === 'function') {
        return; /* Date and friends serialize themselves */
      }
      for (const key of Object.keys(value)) {
        checkJsonValue(value[key], what + '.' + key, depth + 1, code);
      }
      return;
    default:
      fail(code, what + ' is not a JSON value (' + typeof value + ')');
  }
}

function checkOwner(owner) {
  if (typeof owner !== 'string' || !APP_KEY_RE.test(owner)) {
    fail('invalid_argument', 'owner must match [A-Za-z0-9_-]{1,64}, got ' + JSON.stringify(owner));
  }
}

function checkStreamName(name) {
  if (typeof name !== 'string' || !STREAM_RE.test(name)) {
    fail('invalid_argument', 'stream name must match [A-Za-z0-9_.-]{1,128}, got ' + JSON.stringify(name));
  }
}

/* ------------------------------------------------------------------------
 * Query language (docs/query.md)
 * --------------------------------------------------------------------- */

/* operator → kind of value it takes */
const OPERATORS = Object.freeze({
  equals: 'json',
  notEquals: 'json',
  less: 'ordered',
  lessEquals: 'ordered',
  greater: 'ordered',
  greaterEquals: 'ordered',
  between: 'range',
  in: 'list',
  notIn: 'list',
  contains: 'json',
  startsWith: 'string',
  endsWith: 'string',
  match: 'regex',
  exists: 'none',
  notExists: 'none',
  isEmpty: 'none',
  type: 'type',
});

const TYPE_NAMES = ['string', 'number', 'boolean', 'object', 'array', 'null'];

/* Operators that compare strings and so may ignore case. */
const IGNORE_CASE_OPS = ['equals', 'notEquals', 'contains', 'startsWith', 'endsWith', 'in', 'notIn', 'match'];

function checkOperand(op, value, where) {
  const kind = OPERATORS[op];
  const bad = (why) => fail('invalid_query', where + ': ' + op + ' ' + why);
  switch (kind) {
    case 'json':
      if (value === undefined) {
        bad('needs a value');
      }
      checkJsonValue(value, where + '.value', 0, 'invalid_query');
      return;
    case 'ordered':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isFinite(value))) {
        bad('needs a number or a string');
      }
      return;
    case 'range':
      if (!Array.isArray(value) || value.length !== 2) {
        bad('needs [low, high]');
      }
      for (const v of value) {
        if (typeof v !== 'string' && !(typeof v === 'number' && Number.isFinite(v))) {
          bad('bounds must be numbers or strings');
        }
      }
      return;
    case 'list':
      if (!Array.isArray(value)) {
        bad('needs an array');
      }
      checkJsonValue(value, where + '.value', 0, 'invalid_query');
      return;
    case 'string':
      if (typeof value !== 'string') {
        bad('needs a string');
      }
      return;
    case 'regex':
      if (typeof value !== 'string') {
        bad('needs a regular expression string');
      }
      if (utf8Length(value) > QUERY_LIMITS.maxRegexBytes) {
        bad('pattern is longer than ' + QUERY_LIMITS.maxRegexBytes + ' bytes');
      }
      return;
    case 'none':
      if (value !== undefined) {
        bad('takes no value');
      }
      return;
    case 'type':
      if (!TYPE_NAMES.includes(value)) {
        bad('needs one of ' + TYPE_NAMES.join(', '));
      }
      return;
    default:
      fail('invalid_query', where + ': unknown operator ' + JSON.stringify(op));
  }
}

/*
 * Validates one expression (raw JSON) and returns {nodes, depth}. Throws
 * invalid_query naming the offending node.
 */
function checkExpr(expr, where, depth) {
  if (depth > QUERY_LIMITS.maxDepth) {
    fail('invalid_query', where + ': deeper than ' + QUERY_LIMITS.maxDepth + ' levels');
  }
  if (!isPlainObject(expr)) {
    fail('invalid_query', where + ': an expression must be an object');
  }
  const keys = Object.keys(expr);
  if (keys.length === 1 && (keys[0] === 'and' || keys[0] === 'or')) {
    const list = expr[keys[0]];
    if (!Array.isArray(list) || list.length === 0) {
      fail('invalid_query', where + '.' + keys[0] + ': needs a non-empty array');
    }
    let nodes = 1;
    let maxDepth = depth;
    list.forEach((e, i) => {
      const r = checkExpr(e, where + '.' + keys[0] + '[' + i + ']', depth + 1);
      nodes += r.nodes;
      maxDepth = Math.max(maxDepth, r.depth);
    });
    return { nodes, depth: maxDepth };
  }
  if (keys.length === 1 && keys[0] === 'not') {
    const r = checkExpr(expr.not, where + '.not', depth + 1);
    return { nodes: r.nodes + 1, depth: r.depth };
  }
  if (typeof expr.field !== 'string') {
    fail('invalid_query', where + ': needs "field" (a dot path) or and/or/not');
  }
  if (!Object.prototype.hasOwnProperty.call(OPERATORS, expr.op)) {
    fail('invalid_query', where + ': unknown operator ' + JSON.stringify(expr.op));
  }
  for (const k of keys) {
    if (!['field', 'op', 'value', 'ignoreCase'].includes(k)) {
      fail('invalid_query', where + ': unknown key ' + JSON.stringify(k));
    }
  }
  if ('ignoreCase' in expr && typeof expr.ignoreCase !== 'boolean') {
    fail('invalid_query', where + '.ignoreCase: must be a boolean');
  }
  if (expr.ignoreCase === true && !IGNORE_CASE_OPS.includes(expr.op)) {
    fail('invalid_query', where + '.ignoreCase: does not apply to ' + expr.op);
  }
  checkOperand(expr.op, expr.value, where);
  return { nodes: 1, depth };
}

/*
 * Validates a whole query object ({mode, path?, where?}) against docs/query.md
 * and its limits; returns it unchanged. Throws invalid_query.
 */
function validateQuery(query) {
  if (!isPlainObject(query)) {
    fail('invalid_query', 'a query must be an object');
  }
  for (const k of Object.keys(query)) {
    if (!['mode', 'path', 'where'].includes(k)) {
      fail('invalid_query', 'unknown query key ' + JSON.stringify(k));
    }
  }
  const mode = query.mode === undefined ? 'any' : query.mode;
  if (mode !== 'any' && mode !== 'select') {
    fail('invalid_query', 'mode must be "any" or "select"');
  }
  if (mode === 'select') {
    if (typeof query.path !== 'string' || query.path === '') {
      fail('invalid_query', 'select mode needs "path" (the array to filter)');
    }
  } else if (query.path !== undefined) {
    fail('invalid_query', '"path" is only meaningful in select mode');
  }
  if (query.where === undefined) {
    fail('invalid_query', 'a query needs "where" (at least one condition)');
  }
  const r = checkExpr(query.where, 'where', 1);
  if (r.nodes > QUERY_LIMITS.maxNodes) {
    fail('invalid_query', 'more than ' + QUERY_LIMITS.maxNodes + ' nodes');
  }
  if (utf8Length(JSON.stringify(query)) > QUERY_LIMITS.maxBytes) {
    fail('invalid_query', 'query JSON is larger than ' + QUERY_LIMITS.maxBytes + ' bytes');
  }
  return query;
}

function checkField(field) {
  if (typeof field !== 'string') {
    fail('invalid_query', 'field must be a dot path string ("" for the message itself)');
  }
}

/*
 * Fluent, immutable query builder: every method returns a new Query, so a
 * partial query can be reused. Conditions added in a row must all hold
 * (an implicit "and"); or()/not()/and() nest sub-queries, given as Query
 * objects, functions receiving a fresh Query, or raw expressions (docs/query.md).
 *
 *   stream.query().equals('city', 'Lisboa').less('temperature', 15)
 *   LightStream.query().or(q => q.equals('city', 'Porto'), q => q.equals('city', 'Faro'))
 *   stream.query().select('readings').greater('value', 20).subscribe(onMessage)
 */
class Query {
  constructor(stream) {
    this._stream = stream || null;
    this._mode = 'any';
    this._path = undefined;
    this._terms = [];
  }

  _copy() {
    const q = new Query(this._stream);
    q._mode = this._mode;
    q._path = this._path;
    q._terms = this._terms.slice();
    return q;
  }

  _add(node) {
    const q = this._copy();
    q._terms.push(node);
    return q;
  }

  _leaf(field, op, value) {
    checkField(field);
    checkOperand(op, value, op + '(' + JSON.stringify(field) + ')');
    const node = { field, op };
    if (value !== undefined) {
      node.value = value;
    }
    return this._add(node);
  }

  equals(field, value) { return this._leaf(field, 'equals', value); }
  notEquals(field, value) { return this._leaf(field, 'notEquals', value); }
  less(field, value) { return this._leaf(field, 'less', value); }
  lessEquals(field, value) { return this._leaf(field, 'lessEquals', value); }
  greater(field, value) { return this._leaf(field, 'greater', value); }
  greaterEquals(field, value) { return this._leaf(field, 'greaterEquals', value); }
  between(field, low, high) { return this._leaf(field, 'between', [low, high]); }
  in(field, values) { return this._leaf(field, 'in', Array.isArray(values) ? values.slice() : values); }
  notIn(field, values) { return this._leaf(field, 'notIn', Array.isArray(values) ? values.slice() : values); }
  contains(field, value) { return this._leaf(field, 'contains', value); }
  startsWith(field, prefix) { return this._leaf(field, 'startsWith', prefix); }
  endsWith(field, suffix) { return this._leaf(field, 'endsWith', suffix); }
  exists(field) { return this._leaf(field, 'exists'); }
  notExists(field) { return this._leaf(field, 'notExists'); }
  isEmpty(field) { return this._leaf(field, 'isEmpty'); }
  type(field, typeName) { return this._leaf(field, 'type', typeName); }

  /*
   * pattern: a PCRE2 pattern string, or a RegExp whose only allowed flag is
   * `i` (which becomes ignoreCase).
   */
  match(field, pattern) {
    if (pattern instanceof RegExp) {
      const flags = pattern.flags.replace('i', '');
      if (flags !== '') {
        fail('invalid_query', 'match(): only the "i" RegExp flag is supported, got "' + pattern.flags + '"');
      }
      const q = this._leaf(field, 'match', pattern.source);
      return pattern.flags.includes('i') ? q.ignoreCase() : q;
    }
    return this._leaf(field, 'match', pattern);
  }

  /* Compare the previous condition case-insensitively. */
  ignoreCase(on) {
    const last = this._terms[this._terms.length - 1];
    if (!last || typeof last.field !== 'string') {
      fail('invalid_query', 'ignoreCase() must follow a field condition');
    }
    if (on !== false && !IGNORE_CASE_OPS.includes(last.op)) {
      fail('invalid_query', 'ignoreCase() does not apply to ' + last.op + ' (only ' + IGNORE_CASE_OPS.join(', ') + ')');
    }
    const q = this._copy();
    const leaf = Object.assign({}, last);
    if (on === false) {
      delete leaf.ignoreCase;
    } else {
      leaf.ignoreCase = true;
    }
    q._terms[q._terms.length - 1] = leaf;
    return q;
  }

  /* Any of the alternatives holds. */
  or(...alternatives) {
    return this._add({ or: toExprList(alternatives, 'or') });
  }

  /* All of the sub-queries hold (the same as chaining their conditions). */
  and(...parts) {
    return this._add({ and: toExprList(parts, 'and') });
  }

  /* The sub-query does not hold. */
  not(part) {
    if (arguments.length !== 1) {
      fail('invalid_query', 'not() takes exactly one sub-query');
    }
    return this._add({ not: toExpr(part, 'not') });
  }

  /* Append a raw docs/query.md expression. */
  where(expr) {
    checkExpr(expr, 'where', 1);
    return this._add(JSON.parse(JSON.stringify(expr)));
  }

  /*
   * Select mode: the message's `path` must be an array; conditions apply
   * to each element and only matching elements are delivered.
   */
  select(path) {
    if (typeof path !== 'string' || path === '') {
      fail('invalid_query', 'select() needs the dot path of an array');
    }
    const q = this._copy();
    q._mode = 'select';
    q._path = path;
    return q;
  }

  /* Back to "any" mode. */
  any() {
    const q = this._copy();
    q._mode = 'any';
    q._path = undefined;
    return q;
  }

  get mode() { return this._mode; }

  /* Number of top-level conditions. */
  get size() { return this._terms.length; }

  /* The expression of this builder, or undefined when it has none. */
  _expr() {
    if (this._terms.length === 0) {
      return undefined;
    }
    if (this._terms.length === 1) {
      return this._terms[0];
    }
    return { and: this._terms.slice() };
  }

  /*
   * The docs/query.md JSON, validated against its limits. Throws invalid_query
   * when there is no condition (subscribe() treats an empty "any" query as
   * no query at all).
   */
  toJSON() {
    const out = { mode: this._mode };
    if (this._mode === 'select') {
      out.path = this._path;
    }
    const where = this._expr();
    if (where !== undefined) {
      out.where = where;
    }
    return validateQuery(JSON.parse(JSON.stringify(out)));
  }

  toString() {
    return JSON.stringify(this.toJSON());
  }

  /* Subscribe the stream this builder came from; see Stream.subscribe. */
  subscribe(onMessage, options) {
    if (!this._stream) {
      fail('invalid_argument', 'this query is not bound to a stream; use stream.subscribe(query, onMessage)');
    }
    return this._stream.subscribe(this, onMessage, options);
  }
}

function toExpr(part, what) {
  let q = part;
  if (typeof part === 'function') {
    q = part(new Query());
    if (!(q instanceof Query)) {
      fail('invalid_query', what + '(): a function alternative must return the query it was given, extended');
    }
  }
  if (q instanceof Query) {
    if (q._mode !== 'any') {
      fail('invalid_query', what + '(): select() belongs on the outer query only');
    }
    const e = q._expr();
    if (e === undefined) {
      fail('invalid_query', what + '(): a sub-query has no condition');
    }
    return e;
  }
  checkExpr(part, what, 1);
  return JSON.parse(JSON.stringify(part));
}

function toExprList(parts, what) {
  if (parts.length === 1 && Array.isArray(parts[0])) {
    parts = parts[0];
  }
  if (parts.length === 0) {
    fail('invalid_query', what + '() needs at least one sub-query');
  }
  return parts.map((p) => toExpr(p, what));
}

/* A query builder not bound to a stream. */
function query() {
  return new Query(null);
}

/*
 * Normalizes what subscribe() accepts (Query, raw object, null) into the
 * JSON to send, or undefined for "every message".
 */
function normalizeQuery(q) {
  if (q === undefined || q === null) {
    return undefined;
  }
  if (q instanceof Query) {
    if (q.size === 0 && q.mode === 'any') {
      return undefined; /* no condition: the plain subscription */
    }
    return q.toJSON();
  }
  return validateQuery(JSON.parse(JSON.stringify(q)));
}

/* ------------------------------------------------------------------------
 * Permissions
 * --------------------------------------------------------------------- */

/*
 * Do the permissions grant every bit of `bit` on owner/stream? The bits of
 * all matching permissions add up; a stream ending in '*' is a prefix. The
 * same check as the server's ls_perm_allows (common/ls_proto.c), which
 * tests/browser/contract.test.mjs holds it to.
 */
function permits(permissions, owner, stream, bit) {
  if (!Array.isArray(permissions) || !bit) {
    return false;
  }
  let have = 0;
  for (const p of permissions) {
    if (!p || p.owner !== owner || typeof p.stream !== 'string') {
      continue;
    }
    const match = p.stream.endsWith('*') ? stream.startsWith(p.stream.slice(0, -1)) : p.stream === stream;
    if (match) {
      have |= p.permission | 0;
    }
  }
  return (have & bit) === bit;
}

/* ------------------------------------------------------------------------
 * Streams and subscriptions
 * --------------------------------------------------------------------- */

class Stream {
  constructor(client, owner, name) {
    checkOwner(owner);
    checkStreamName(name);
    this._client = client;
    this.owner = owner;
    this.name = name;
    Object.freeze(this);
  }

  /*
   * Publish one JSON value. Without options.ack returns undefined once the
   * message is sent or queued; with {ack: true} returns a Promise resolved
   * when the server's pub/sub fabric accepted it. Throws forbidden without
   * write permission, not_connected before open(), queue_full when the
   * bounded queues are full.
   */
  publish(data, options) {
    return this._client._publish(this.owner, this.name, data, options || {});
  }

  /*
   * subscribe([query,] onMessage [, options]) → Promise<Subscription>.
   * onMessage(data, meta) is called for every delivered message; meta is
   * {owner, stream, subscription, offset?} (offset when the stream keeps
   * history). The subscription survives reconnects: it subscribes again
   * with `since` and gets the messages it missed (see its 'subscribed'
   * event). options: {onError?, onSubscribed?, since?: {epoch, offset}} —
   * since resumes from a position saved earlier (subscription.epoch /
   * .offset); onSubscribed is a 'subscribed' listener from the start.
   */
  subscribe(q, onMessage, options) {
    if (typeof q === 'function') {
      options = onMessage;
      onMessage = q;
      q = undefined;
    }
    return this._client._subscribe(this, q, onMessage, options || {});
  }

  /* A query builder whose subscribe() subscribes this stream. */
  query() {
    return new Query(this);
  }

  get canRead() {
    return this._client.can(this.owner, this.name, 'read');
  }

  get canWrite() {
    return this._client.can(this.owner, this.name, 'write');
  }

  toString() {
    return this.owner + ':' + this.name;
  }
}

class Subscription {
  constructor(client, stream, queryJson, onMessage, options) {
    this._client = client;
    this.stream = stream;
    this.query = queryJson;
    this._onMessage = onMessage;
    this._onError = typeof options.onError === 'function' ? options.onError : null;
    this._serverId = null;
    this._state = 'pending'; /* pending → active ⇄ pending (reconnect) → ended */
    this._settled = false;
    this._error = null;
    this._ended = [];
    /* options.onSubscribed sees the first confirmation too (a listener
     * added after subscribe() resolved would miss it) */
    this._subscribed = typeof options.onSubscribed === 'function' ? [options.onSubscribed] : [];
    /* History position (docs/protocol.md, "History and recovery"): the
     * stream's epoch and the last offset this subscription saw; sent as
     * `since` when it subscribes again after a reconnect. */
    const since = options.since;
    if (since !== undefined && since !== null &&
        (typeof since !== 'object' || typeof since.epoch !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(since.epoch) ||
         !Number.isSafeInteger(since.offset) || since.offset < 0)) {
      fail('invalid_argument', 'options.since must be {epoch, offset} as a subscription reported them');
    }
    this._epoch = since ? since.epoch : null;
    this._offset = since ? since.offset : null;
    this._recovered = null;
    this._recoveredFns = [];
    /* SSE transport: the EventSource, its generation, retries */
    this._es = null;
    this._sseGen = 0;
    this._sseTimer = null;
    this._sseAttempt = 0;
    this._ready = new Promise((resolve, reject) => {
      this._resolve = resolve;
      this._reject = reject;
    });
  }

  /* The server's subscription id of the current connection (changes on reconnect). */
  get id() { return this._serverId; }

  /* True until unsubscribe() or a permanent failure. */
  get active() { return this._state !== 'ended'; }

  /* Why the subscription ended (a LightStreamError), or null. */
  get error() { return this._error; }

  /* The stream's history epoch, and the offset of the last message seen (or where it started). */
  get epoch() { return this._epoch; }
  get offset() { return this._offset; }

  /*
   * After a (re)subscription with `since`: true when every missed message
   * was (or is being) delivered, false when some may be lost; null before.
   */
  get recovered() { return this._recovered; }

  /*
   * Register fn for an event of this subscription. 'ended': fn(error) once
   * when it ends for good — error is null after unsubscribe(), else why
   * (e.g. forbidden when the server withdrew the read permission, see
   * SubscriptionEnded). 'subscribed': fn({recovered, epoch, offset,
   * resubscribed}) each time the server confirms it — the first time and
   * after every reconnect; after a reconnect `recovered` says whether the
   * messages published meanwhile follow (true) or may be lost (false).
   * Returns a function that removes fn.
   */
  on(name, fn) {
    if (SUBSCRIPTION_EVENTS.indexOf(name) < 0) {
      fail('invalid_argument', 'unknown event ' + JSON.stringify(name) + ' (known: ' + SUBSCRIPTION_EVENTS.join(', ') + ')');
    }
    if (typeof fn !== 'function') {
      fail('invalid_argument', 'on() needs a function');
    }
    (name === 'ended' ? this._ended : name === 'recovered' ? this._recoveredFns : this._subscribed).push(fn);
    return () => this.off(name, fn);
  }

  off(name, fn) {
    const list = name === 'ended' ? this._ended : name === 'subscribed' ? this._subscribed
      : name === 'recovered' ? this._recoveredFns : [];
    const i = list.indexOf(fn);
    if (i >= 0) {
      list.splice(i, 1);
    }
  }

  /* Stop receiving messages; resolves once the server confirmed (or at once when offline). */
  unsubscribe() {
    return this._client._unsubscribe(this);
  }

  _settle(err) {
    if (this._settled) {
      return;
    }
    this._settled = true;
    if (err) {
      this._reject(err);
    } else {
      this._resolve(this);
    }
  }
}

/* ------------------------------------------------------------------------
 * Client
 * --------------------------------------------------------------------- */

function defaultUrl() {
  const loc = typeof location !== 'undefined' ? location : null;
  if (!loc || !/^https?:$/.test(loc.protocol)) {
    fail('invalid_argument', 'createClient() needs options.url outside a web page');
  }
  return (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + DEFAULTS.path;
}

/* Accepts ws(s):// or http(s):// URLs; a bare origin gets the default path. */
function resolveUrl(url) {
  if (url === undefined || url === null || url === '') {
    return defaultUrl();
  }
  if (typeof url !== 'string') {
    fail('invalid_argument', 'options.url must be a string');
  }
  const m = /^(wss?|https?):\/\/([^/?#]+)([^?#]*)(.*)$/i.exec(url);
  if (!m) {
    fail('invalid_argument', 'options.url must be a ws://, wss://, http:// or https:// URL, got ' + JSON.stringify(url));
  }
  let scheme = m[1].toLowerCase();
  scheme = scheme === 'http' ? 'ws' : scheme === 'https' ? 'wss' : scheme;
  const path = m[3] === '' || m[3] === '/' ? DEFAULTS.path : m[3];
  return scheme + '://' + m[2] + path + m[4];
}

/*
 * The http(s):// base of the gateway's HTTP endpoints (SSE, publish): given,
 * or from the WebSocket URL (same host; a path prefix before
 * /lightstream/websocket is kept, for gateways behind a path-routing proxy).
 */
function resolveHttpUrl(httpUrl, wsUrl) {
  if (httpUrl !== undefined && httpUrl !== null && httpUrl !== '') {
    const m = typeof httpUrl === 'string' && /^(https?:\/\/[^/?#]+)(\/[^?#]*)?$/i.exec(httpUrl);
    if (!m) {
      fail('invalid_argument', 'options.httpUrl must be an http:// or https:// URL without query, got ' + JSON.stringify(httpUrl));
    }
    return m[1] + (m[2] || '').replace(/\/+$/, '');
  }
  const m = /^(wss?):\/\/([^/?#]+)([^?#]*)/i.exec(wsUrl);
  const scheme = m[1].toLowerCase() === 'wss' ? 'https' : 'http';
  const prefix = m[3].endsWith(DEFAULTS.path) ? m[3].slice(0, -DEFAULTS.path.length) : '';
  return scheme + '://' + m[2] + prefix;
}

/* The error of an HTTP answer: the envelope's first error, else the status's code. */
async function httpError(r) {
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    /* not JSON */
  }
  const e = body && Array.isArray(body.errors) ? body.errors[0] : null;
  if (e && typeof e.code === 'string') {
    return serverError(e, 'server_error');
  }
  return new LightStreamError(HTTP_STATUS_ERRORS[r.status] || 'server_error', 'HTTP ' + r.status, { server: true, status: r.status });
}

/* getToken() may return the token string or generatetoken's data object. */
function tokenValue(t) {
  if (typeof t === 'string' && t !== '') {
    return t;
  }
  if (t && typeof t === 'object') {
    if (typeof t.value === 'string' && t.value !== '') {
      return t.value;
    }
    if (typeof t.token === 'string' && t.token !== '') {
      return t.token;
    }
  }
  fail('invalid_argument', 'a token must be a non-empty string (or an object with "value")');
}

function serverError(e, fallbackCode) {
  const code = e && typeof e.code === 'string' ? e.code : fallbackCode;
  const message = e && typeof e.message === 'string' ? e.message : code;
  return new LightStreamError(code, message, { server: true });
}

class Client {
  /*
   * options: {url, appKey, token, getToken?, onWebToken?, WebSocket?,
   * reconnect?: false | {initialDelay, maxDelay, factor, jitter, maxAttempts},
   * requestTimeout?, authTimeout?, maxQueuedMessages?, maxBufferedBytes?,
   * maxFrameBytes?, autoRefresh?, transport?: 'websocket' | 'sse' | 'auto',
   * httpUrl?, EventSource?, fetch?}
   */
  constructor(options) {
    const o = options || {};
    checkOwner(o.appKey);
    if (o.token === undefined && typeof o.getToken !== 'function') {
      fail('invalid_argument', 'createClient() needs options.token or options.getToken');
    }
    if (o.getToken !== undefined && typeof o.getToken !== 'function') {
      fail('invalid_argument', 'options.getToken must be a function');
    }
    this.appKey = o.appKey;
    this.url = resolveUrl(o.url);
    this._token = o.token === undefined ? null : tokenValue(o.token);
    this._getToken = o.getToken || null;
    this._onWebToken = o.onWebToken || null;
    this._WebSocket = o.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : null);
    this._initTransport(o);
    const r = o.reconnect === false ? { enabled: false } : o.reconnect || {};
    this._reconnect = Object.assign({}, DEFAULTS.reconnect, r);
    const rc = this._reconnect;
    if (!(rc.initialDelay > 0) || !(rc.maxDelay >= rc.initialDelay) || !(rc.factor >= 1) ||
        !(rc.jitter >= 0 && rc.jitter <= 1) || !(rc.maxAttempts > 0)) {
      fail('invalid_argument', 'options.reconnect: need initialDelay > 0, maxDelay >= initialDelay, factor >= 1, 0 <= jitter <= 1, maxAttempts > 0');
    }
    for (const k of ['requestTimeout', 'authTimeout', 'maxQueuedMessages', 'maxBufferedBytes',
      'maxFrameBytes', 'maxPendingRequests', 'refreshLeadMs']) {
      const v = o[k] === undefined ? DEFAULTS[k] : o[k];
      if (typeof v !== 'number' || !(v > 0)) {
        fail('invalid_argument', 'options.' + k + ' must be a positive number');
      }
      this['_' + k] = v;
    }
    this._autoRefresh = o.autoRefresh === undefined ? this._getToken !== null : Boolean(o.autoRefresh);

    this._state = 'idle';
    this._gen = 0; /* generation of the current socket; events of older ones are ignored */
    this._ws = null;
    this._listeners = new Map(EVENTS.map((e) => [e, []]));
    this._subs = new Set();
    this._bySid = new Map();
    this._pending = new Map(); /* requestId → {kind, resolve, reject, timer, sub?} */
    this._refreshes = []; /* FIFO: RefreshResponse carries no request id */
    this._outbox = []; /* publishes waiting for a connection */
    this._seq = 0;
    this._everOpened = false;
    this._openWaiter = null;
    this._freshTokenTried = false;
    this._needFreshToken = this._token === null;
    this._preferFreshToken = false;
    this._attempt = 0;
    this._timers = { reconnect: null, auth: null, refresh: null };
    this._lastError = null;
    this._session = null; /* {connectionId, expiresAt, permissions} of the last authentication */
  }

  /* 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed' */
  get state() { return this._state; }

  get connectionId() { return this._session ? this._session.connectionId : null; }

  get expiresAt() { return this._session ? this._session.expiresAt : null; }

  get permissions() { return this._session && this._session.permissions ? this._session.permissions.slice() : []; }

  /* The token the next (re)authentication uses. */
  get token() { return this._token; }

  /* 'websocket' | 'sse' once connected (null before): see options.transport. */
  get transport() { return this._transport; }

  /*
   * Connect and authenticate. options.onWebToken({appKey, token,
   * connectionId}) must return (or resolve to) the web-token signature,
   * computed by the application's backend. Resolves to {connectionId,
   * expiresAt, permissions}; rejects with a LightStreamError (auth_failed,
   * connection_failed, timeout, closed...).
   */
  open(options) {
    const o = options || {};
    if (o.onWebToken !== undefined) {
      if (typeof o.onWebToken !== 'function') {
        fail('invalid_argument', 'onWebToken must be a function');
      }
      this._onWebToken = o.onWebToken;
    }
    if (this._state === 'open') {
      return Promise.resolve(this._sessionInfo());
    }
    if (this._openWaiter) {
      return this._openWaiter.promise;
    }
    if (this._state === 'reconnecting') {
      return new Promise((resolve, reject) => {
        const offOpen = this.on('open', (info) => { offOpen(); offClose(); resolve(info); });
        const offClose = this.on('close', (ev) => {
          if (!ev.willReconnect) { offOpen(); offClose(); reject(ev.error); }
        });
      });
    }
    const waiter = {};
    waiter.promise = new Promise((resolve, reject) => {
      waiter.resolve = resolve;
      waiter.reject = reject;
    });
    this._openWaiter = waiter;
    this._state = 'connecting';
    this._everOpened = false;
    this._attempt = 0;
    this._freshTokenTried = false;
    this._connect();
    return waiter.promise;
  }

  /* Close for good (no reconnect). Pending requests fail with `closed`. */
  close() {
    if (this._state === 'closed' || this._state === 'idle') {
      this._state = 'closed';
      return Promise.resolve();
    }
    const ws = this._ws;
    this._gen++;
    this._ws = null;
    const done = new Promise((resolve) => {
      if (!ws || ws.readyState === 3) {
        resolve();
        return;
      }
      const prev = ws.onclose;
      ws.onclose = (ev) => { if (prev) { prev(ev); } resolve(); };
      try { ws.close(1000, 'client closed'); } catch (e) { resolve(); }
    });
    const err = new LightStreamError('closed', 'the client was closed');
    const waiter = this._openWaiter;
    this._openWaiter = null;
    this._shutdown(err);
    if (waiter) {
      waiter.reject(err);
    }
    this._emitClose({ code: 1000, reason: 'client closed', willReconnect: false, error: null });
    return done;
  }

  /* Register fn for an event: open, close, error, reconnecting, refresh, permissionsChanged, revoked. Returns a function that removes it. */
  on(name, fn) {
    const list = this._listeners.get(name);
    if (!list) {
      fail('invalid_argument', 'unknown event ' + JSON.stringify(name) + ' (known: ' + EVENTS.join(', ') + ')');
    }
    if (typeof fn !== 'function') {
      fail('invalid_argument', 'on() needs a function');
    }
    list.push(fn);
    return () => this.off(name, fn);
  }

  off(name, fn) {
    const list = this._listeners.get(name);
    if (list) {
      const i = list.indexOf(fn);
      if (i >= 0) {
        list.splice(i, 1);
      }
    }
  }

  /* A handle on one stream; cheap, create as many as you like. */
  stream(owner, name) {
    return new Stream(this, owner, name);
  }

  /*
   * May this connection read/write owner/stream, according to the
   * permissions of the last authentication? (false before the first.)
   */
  can(owner, stream, access) {
    if (!this._session) {
      return false;
    }
    const bit = access === 'write' ? Permission.WRITE : access === 'read' ? Permission.READ : 0;
    if (!bit) {
      fail('invalid_argument', 'access must be "read" or "write"');
    }
    if (this._session.permissions === null) {
      return null; /* over SSE: unknown, the server decides per request */
    }
    return permits(this._session.permissions, owner, stream, bit);
  }

  /*
   * Extend the connection with a new token of the same account (before
   * the current one expires). Resolves to {expiresAt}; the new token is
   * also used for later reconnects.
   */
  refresh(token) {
    const value = tokenValue(token);
    if (this._state !== 'open') {
      fail('not_connected', 'refresh() needs an open connection');
    }
    if (this._transport === 'sse') {
      /* no session to extend: streams opened from now on use it */
      this._token = value;
      return Promise.resolve({ expiresAt: null });
    }
    if (this._refreshes.length >= this._maxPendingRequests) {
      fail('queue_full', 'too many refreshes await an answer');
    }
    return new Promise((resolve, reject) => {
      const entry = { token: value, resolve, reject, timer: null };
      entry.timer = setTimeout(() => {
        const i = this._refreshes.indexOf(entry);
        if (i >= 0) {
          /* keep the slot so a late response pairs with the right request */
          entry.resolve = entry.reject = () => {};
        }
        reject(new LightStreamError('timeout', 'no RefreshResponse within ' + this._requestTimeout + ' ms'));
      }, this._requestTimeout);
      this._refreshes.push(entry);
      try {
        this._sendNow({ t: MessageType.REFRESH_REQUEST, m: { token: value } });
      } catch (e) {
        this._refreshes.splice(this._refreshes.indexOf(entry), 1);
        clearTimeout(entry.timer);
        reject(e);
      }
    });
  }

  /* ---------------- internals ---------------- */

  _sessionInfo() {
    const s = this._session;
    return { connectionId: s.connectionId, expiresAt: s.expiresAt, permissions: s.permissions ? s.permissions.slice() : null };
  }

  _nextId(prefix) {
    this._seq = (this._seq + 1) % Number.MAX_SAFE_INTEGER;
    return prefix + this._seq.toString(36);
  }

  _emit(name, arg) {
    const list = this._listeners.get(name).slice();
    if (name === 'error' && list.length === 0) {
      return; /* errors also reach the promise or callback concerned */
    }
    for (const fn of list) {
      try {
        fn(arg);
      } catch (e) {
        this._callbackFailed(e, name + ' listener');
      }
    }
  }

  /* 'close' and its newer name 'disconnected', with the same payload. */
  _emitClose(ev) {
    this._emit('close', ev);
    this._emit('disconnected', ev);
  }

  /* A user callback threw: report it without breaking the connection. */
  _callbackFailed(e, where) {
    const err = new LightStreamError('callback_failed', where + ' threw: ' + (e && e.message ? e.message : String(e)), { cause: e });
    if (where !== 'error listener' && this._listeners.get('error').length > 0) {
      this._emit('error', err);
    } else {
      setTimeout(() => { throw e; }, 0); /* surface it like any uncaught error */
    }
  }

  async _connect() {
    const gen = ++this._gen;
    this._clearTimer('reconnect');
    this._emit('connecting', { attempt: this._attempt, transport: this._transport || 'websocket' });
    let token = this._token;
    /*
     * A fresh token is required when there is none or the server refused
     * or expired it; it is preferred after a lost connection (the old one
     * may be close to expiry or revoked), but then the old one still serves
     * when getToken() fails.
     */
    if (this._getToken && (this._needFreshToken || this._preferFreshToken)) {
      let fresh = null;
      let failure = null;
      try {
        fresh = tokenValue(await this._getToken());
      } catch (e) {
        failure = e instanceof LightStreamError ? e
          /* fetch() rejects with a TypeError when the network failed: the
           * backend was not reached, the credentials were not refused */
          : e instanceof TypeError
            ? new LightStreamError('unavailable', 'getToken() could not reach its token backend: ' + e.message, { cause: e })
            : new LightStreamError('auth_failed', 'getToken() failed: ' + (e && e.message ? e.message : e), { cause: e });
      }
      if (gen !== this._gen) {
        return;
      }
      if (fresh !== null) {
        this._token = token = fresh;
        this._needFreshToken = this._preferFreshToken = false;
      } else if (this._needFreshToken || token === null) {
        this._connectFailed(gen, failure, false);
        return;
      } else {
        this._emit('error', failure); /* carry on with the old token */
      }
    } else if (this._needFreshToken) {
      this._connectFailed(gen, new LightStreamError('auth_failed', 'no valid token and no getToken()'), true);
      return;
    }
    if (this._transportOption === 'sse' || this._transport === 'sse') {
      this._sseOpen(gen, this._transportOption === 'sse' ? 'requested' : 'WebSocket unavailable');
      return;
    }
    let ws;
    try {
      ws = new this._WebSocket(this.url);
    } catch (e) {
      const err = new LightStreamError('connection_failed', 'cannot open ' + this.url + ': ' + (e && e.message), { cause: e });
      if (this._transportOption === 'auto') {
        this._sseFallback(gen, err, 0, '');
        return;
      }
      this._connectFailed(gen, err, false);
      return;
    }
    let opened = false;
    this._ws = ws;
    this._authError = null;
    this._lastError = null;
    this._timers.auth = setTimeout(() => {
      if (gen === this._gen) {
        this._authError = new LightStreamError('timeout', 'not authenticated within ' + this._authTimeout + ' ms');
        try { ws.close(); } catch (e) { /* already closing */ }
      }
    }, this._authTimeout);
    ws.onopen = () => {
      opened = true;
      if (gen === this._gen) {
        this._rawSend(ws, JSON.stringify({ t: MessageType.AUTH_REQUEST, m: { appKey: this.appKey, token } }));
      }
    };
    ws.onmessage = (ev) => {
      if (gen === this._gen) {
        this._onFrame(ws, gen, ev.data);
      }
    };
    ws.onerror = () => { /* a close event follows and carries the outcome */ };
    ws.onclose = (ev) => {
      if (gen !== this._gen) {
        return;
      }
      if (!opened && this._transportOption === 'auto') {
        /* the WebSocket never opened: SSE may still get through */
        this._sseFallback(gen, null, ev.code, ev.reason);
        return;
      }
      this._onSocketClose(ev.code, ev.reason);
    };
  }

  _rawSend(ws, text) {
    try {
      ws.send(text);
    } catch (e) {
      /* the close event that follows handles it */
    }
  }

  _onFrame(ws, gen, text) {
    let env;
    try {
      env = JSON.parse(text);
    } catch (e) {
      this._emit('error', new LightStreamError('protocol_error', 'the server sent invalid JSON'));
      return;
    }
    if (!isPlainObject(env) || !isPlainObject(env.m)) {
      this._emit('error', new LightStreamError('protocol_error', 'the server sent a frame without {"t","m"}'));
      return;
    }
    const m = env.m;
    switch (env.t) {
      case MessageType.AUTH_RESPONSE:
        if (m.ok === true) {
          this._authenticated(m);
        } else {
          this._authError = serverError(m.error, 'auth_failed');
        }
        return;
      case MessageType.WEB_TOKEN_REQUEST:
        this._answerWebToken(ws, gen, m);
        return;
      case MessageType.DATA:
        this._deliver(m);
        return;
      case MessageType.SUBSCRIBE_RESPONSE:
        this._subscribeResponse(m);
        return;
      case MessageType.UNSUBSCRIBE_RESPONSE:
        this._settlePending('u:' + m.subscriptionId, m.ok !== false ? null : serverError(m.error, 'server_error'));
        return;
      case MessageType.PUBLISH_RESPONSE:
        this._settlePending(m.requestId, m.ok === true ? null : serverError(m.error, 'server_error'));
        return;
      case MessageType.REFRESH_RESPONSE:
        this._refreshResponse(m);
        return;
      case MessageType.SUBSCRIPTION_ENDED: {
        const sub = this._bySid.get(m.subscriptionId);
        if (sub) {
          this._endSubscription(sub, serverError(m.error, 'forbidden'));
        }
        return;
      }
      case MessageType.PERMISSIONS_CHANGED:
        if (this._session && Array.isArray(m.permissions)) {
          this._session.permissions = m.permissions;
          this._emit('permissionsChanged', { permissions: m.permissions.slice() });
        }
        return;
      case MessageType.ERROR: {
        const err = serverError(m, 'server_error');
        this._lastError = err;
        if (this._state === 'connecting' || this._state === 'reconnecting') {
          this._authError = err;
        }
        this._emit('error', err);
        return;
      }
      default:
        return; /* newer server: ignore what we do not know */
    }
  }

  async _answerWebToken(ws, gen, m) {
    let signature;
    try {
      if (!this._onWebToken) {
        fail('auth_failed', 'the token is a web token: open({onWebToken}) must provide its signature');
      }
      signature = await this._onWebToken({ appKey: m.appKey, token: m.token, connectionId: m.connectionId });
      if (typeof signature !== 'string' || signature === '') {
        fail('auth_failed', 'onWebToken must return (or resolve to) the signature string');
      }
    } catch (e) {
      if (gen === this._gen) {
        this._authError = e instanceof LightStreamError ? e : new LightStreamError('auth_failed', 'onWebToken failed: ' + (e && e.message ? e.message : e), { cause: e });
        this._authError.fatal = true; /* retrying will not help */
        try { ws.close(1000, 'web token not signed'); } catch (x) { /* closing */ }
      }
      return;
    }
    if (gen === this._gen) {
      this._rawSend(ws, JSON.stringify({ t: MessageType.WEB_TOKEN_RESPONSE, m: { signature } }));
    }
  }

  _authenticated(m) {
    this._clearTimer('auth');
    const reconnected = this._everOpened;
    this._setTransport('websocket', null);
    this._session = {
      connectionId: m.connectionId,
      expiresAt: m.expiresAt || null,
      permissions: Array.isArray(m.permissions) ? m.permissions : [],
    };
    this._state = 'open';
    this._everOpened = true;
    this._attempt = 0;
    this._freshTokenTried = false;

    for (const sub of this._subs) {
      if (!permits(this._session.permissions, sub.stream.owner, sub.stream.name, Permission.READ)) {
        this._endSubscription(sub, new LightStreamError('forbidden', 'no read permission on ' + sub.stream + ' any more'));
        continue;
      }
      try {
        this._sendSubscribe(sub);
      } catch (e) {
        this._endSubscription(sub, e);
      }
    }
    const queued = this._outbox;
    this._outbox = [];
    for (const item of queued) {
      if (item.arm) {
        try {
          item.arm();
        } catch (e) {
          item.reject(e);
          continue;
        }
      }
      this._rawSend(this._ws, item.text);
    }
    this._scheduleRefresh();
    const info = Object.assign(this._sessionInfo(), { reconnected, transport: 'websocket' });
    this._everOpened = true;
    this._emit('open', info);
    this._emit('connected', info);
    if (this._openWaiter) {
      const w = this._openWaiter;
      this._openWaiter = null;
      w.resolve(this._sessionInfo());
    }
  }

  _onSocketClose(code, reason) {
    this._clearTimer('auth');
    this._clearTimer('refresh');
    const wasOpen = this._state === 'open';
    this._ws = null;
    const known = CLOSE_CODE_ERRORS[code];
    let err = this._authError || this._lastError;
    if (!err && code === 1006 && !wasOpen && !this._everOpened) {
      /* no WebSocket ever opened: say so, not "lost" */
      err = new LightStreamError('connection_failed', 'could not connect to ' + this.url +
        ' (the server is unreachable or refused the WebSocket)', { closeCode: code });
    } else if (!err) {
      const words = known ? known[1] : CLOSE_WORDS[code] || 'the connection closed unexpectedly';
      err = new LightStreamError(known ? known[0] : 'connection_failed', words + (reason ? ': ' + reason : ''), { closeCode: code });
    } else if (err.closeCode === undefined) {
      err.closeCode = code;
    }
    this._failInFlight();

    /* err is the server's own word when it gave one (e.g. unavailable before a close) */
    const revoked = err.code === 'token_revoked';
    const tokenProblem = err.code === 'auth_failed' || err.code === 'token_expired' || revoked;
    if (revoked) {
      /* never present this token again: only getToken() can go on */
      this._emit('revoked', { error: err, willReconnect: Boolean(this._getToken) && this._reconnect.enabled });
    }
    if (this._openWaiter) {
      /* never authenticated in this open(): one retry with a fresh token, then give up */
      if (tokenProblem && this._getToken && !this._freshTokenTried && !err.fatal) {
        this._freshTokenTried = true;
        this._needFreshToken = true;
        this._connect();
        return;
      }
      this._giveUp(err, code, reason);
      return;
    }
    if (!this._reconnect.enabled || err.fatal) {
      this._giveUp(err, code, reason);
      return;
    }
    if (tokenProblem) {
      if (!this._getToken) {
        this._giveUp(err, code, reason);
        return;
      }
      this._needFreshToken = true;
    }
    this._state = 'reconnecting';
    if (wasOpen) {
      this._preferFreshToken = this._getToken !== null;
      this._emitClose({ code, reason: reason || '', willReconnect: true, error: err });
    }
    this._scheduleReconnect(err);
  }

  /* A connection attempt failed before a socket existed. */
  _connectFailed(gen, err, fatal) {
    if (gen !== this._gen) {
      return;
    }
    this._clearTimer('auth');
    if (this._openWaiter || fatal || !this._reconnect.enabled) {
      this._giveUp(err, 0, '');
      return;
    }
    this._scheduleReconnect(err);
  }

  _scheduleReconnect(err) {
    const r = this._reconnect;
    this._attempt++;
    if (this._attempt > r.maxAttempts) {
      this._giveUp(new LightStreamError(err.code, 'gave up after ' + r.maxAttempts + ' reconnect attempts: ' + err.message, { cause: err }), 0, '');
      return;
    }
    const base = Math.min(r.maxDelay, r.initialDelay * Math.pow(r.factor, this._attempt - 1));
    const jitter = Math.min(Math.max(r.jitter, 0), 1);
    const delay = Math.round(base * (1 - jitter * Math.random()));
    this._state = 'reconnecting';
    this._timers.reconnect = setTimeout(() => {
      this._timers.reconnect = null;
      if (this._state === 'reconnecting') {
        this._connect();
      }
    }, delay);
    this._emit('reconnecting', { attempt: this._attempt, delay, error: err });
  }

  _giveUp(err, code, reason) {
    const waiter = this._openWaiter;
    this._openWaiter = null;
    this._gen++;
    this._shutdown(err);
    if (waiter) {
      waiter.reject(err);
    } else if (err !== this._lastError) {
      /* the server's Error was reported when it arrived: once is enough */
      this._emit('error', err);
    }
    this._emitClose({ code, reason: reason || '', willReconnect: false, error: err });
  }

  /* Everything in flight on the lost socket fails or is re-sent later. */
  _failInFlight() {
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      if (p.kind === 'subscribe') {
        continue; /* the subscription re-subscribes on the next connection */
      }
      if (p.kind === 'unsubscribe') {
        p.resolve(); /* the server forgot it with the connection */
      } else {
        p.reject(new LightStreamError('disconnected', 'the connection was lost before the server acknowledged (the message may or may not have been published)'));
      }
      this._pending.delete(id);
    }
    this._pending.clear();
    for (const sub of this._subs) {
      if (sub._serverId !== null) {
        this._bySid.delete(sub._serverId);
        sub._serverId = null;
      }
      if (sub._state === 'active') {
        sub._state = 'pending';
      }
    }
    this._bySid.clear();
    const refreshes = this._refreshes;
    this._refreshes = [];
    for (const r of refreshes) {
      clearTimeout(r.timer);
      r.reject(new LightStreamError('disconnected', 'the connection was lost before the refresh was confirmed'));
    }
  }

  /* Final state: fail everything, forget subscriptions. */
  _shutdown(err) {
    this._state = 'closed';
    for (const k of Object.keys(this._timers)) {
      this._clearTimer(k);
    }
    this._failInFlight();
    this._session = null;
    for (const sub of Array.from(this._subs)) {
      this._endSubscription(sub, err, true);
    }
    const outbox = this._outbox;
    this._outbox = [];
    for (const item of outbox) {
      if (item.reject) {
        item.reject(err);
      }
    }
  }

  _clearTimer(name) {
    if (this._timers[name]) {
      clearTimeout(this._timers[name]);
      this._timers[name] = null;
    }
  }

  _scheduleRefresh() {
    this._clearTimer('refresh');
    if (!this._autoRefresh || !this._getToken || !this._session || !this._session.expiresAt) {
      return;
    }
    const left = Date.parse(this._session.expiresAt) - Date.now();
    if (!Number.isFinite(left)) {
      return;
    }
    const lead = Math.min(this._refreshLeadMs, left / 4);
    /* the floor keeps a skewed clock (expiry "in the past") from refreshing in a loop */
    const delay = Math.max(MIN_REFRESH_INTERVAL_MS, Math.min(left - lead, 0x7fffffff));
    const gen = this._gen;
    this._timers.refresh = setTimeout(async () => {
      this._timers.refresh = null;
      try {
        const fresh = tokenValue(await this._getToken());
        if (gen === this._gen && this._state === 'open') {
          await this.refresh(fresh);
        }
      } catch (e) {
        /* the server ends the session with token_expired; reconnect fetches a token then */
        this._emit('error', e instanceof LightStreamError ? e : new LightStreamError('auth_failed', 'automatic refresh failed: ' + (e && e.message), { cause: e }));
      }
    }, delay);
  }

  _refreshResponse(m) {
    const entry = this._refreshes.shift();
    if (!entry) {
      return;
    }
    clearTimeout(entry.timer);
    if (m.ok === true) {
      this._token = entry.token;
      if (this._session) {
        this._session.expiresAt = m.expiresAt || this._session.expiresAt;
      }
      this._scheduleRefresh();
      entry.resolve({ expiresAt: m.expiresAt || null });
      this._emit('refresh', { expiresAt: m.expiresAt || null });
    } else {
      entry.reject(serverError(m.error, 'auth_failed'));
    }
  }

  /* Send now on the open socket, enforcing frame and buffer limits. */
  _sendNow(obj) {
    const text = JSON.stringify(obj);
    this._checkFrame(text);
    const ws = this._ws;
    if (this._state !== 'open' || !ws || ws.readyState !== 1) {
      fail('not_connected', 'the connection is not open');
    }
    if (ws.bufferedAmount > this._maxBufferedBytes) {
      fail('queue_full', 'more than ' + this._maxBufferedBytes + ' bytes wait to be sent');
    }
    ws.send(text);
  }

  _checkFrame(text) {
    if (text.length * 3 > this._maxFrameBytes && utf8Length(text) > this._maxFrameBytes) {
      fail('too_large', 'message of ' + utf8Length(text) + ' bytes exceeds the ' + this._maxFrameBytes + '-byte frame limit');
    }
  }

  _checkUsable(owner, stream, bit, what) {
    if (this._state === 'idle' || this._state === 'closed' || !this._session) {
      fail('not_connected', what + ' needs open() to have succeeded');
    }
    if (this._session.permissions !== null && !permits(this._session.permissions, owner, stream, bit)) {
      fail('forbidden', 'no ' + (bit === Permission.WRITE ? 'write' : 'read') + ' permission on ' + owner + '/' + stream, { owner, stream });
    }
  }

  _addPending(id, entry) {
    if (this._pending.size >= this._maxPendingRequests) {
      fail('queue_full', 'more than ' + this._maxPendingRequests + ' requests await an answer');
    }
    this._pending.set(id, entry);
  }

  _settlePending(id, err) {
    const p = this._pending.get(id);
    if (!p) {
      return;
    }
    this._pending.delete(id);
    clearTimeout(p.timer);
    if (err) {
      p.reject(err);
    } else {
      p.resolve();
    }
  }

  _publish(owner, stream, data, options) {
    this._checkUsable(owner, stream, Permission.WRITE, 'publish()');
    if (data === undefined) {
      fail('invalid_argument', 'publish() needs a JSON value');
    }
    checkJsonValue(data, 'data');
    if (this._transport === 'sse') {
      return this._ssePublish(owner, stream, data, options);
    }
    const m = { owner, stream, data };
    let result;
    let entry = null;
    if (options.ack) {
      m.requestId = this._nextId('p');
      result = new Promise((resolve, reject) => { entry = { kind: 'publish', resolve, reject, timer: null }; });
    }
    const text = JSON.stringify({ t: MessageType.DATA, m });
    this._checkFrame(text);
    if (this._state === 'open' && this._ws && this._ws.readyState === 1) {
      if (this._ws.bufferedAmount > this._maxBufferedBytes) {
        fail('queue_full', 'more than ' + this._maxBufferedBytes + ' bytes wait to be sent');
      }
      if (entry) {
        this._armPublish(m.requestId, entry);
      }
      this._ws.send(text);
    } else {
      if (this._outbox.length >= this._maxQueuedMessages) {
        fail('queue_full', this._maxQueuedMessages + ' messages already wait for the connection');
      }
      const id = m.requestId;
      /* an ack's timer starts when the message is sent: offline time does not count */
      const item = { text, reject: entry ? entry.reject : null, arm: entry ? () => this._armPublish(id, entry) : null };
      this._outbox.push(item);
    }
    return result;
  }

  _armPublish(id, entry) {
    this._addPending(id, entry);
    entry.timer = setTimeout(() => {
      this._settlePending(id, new LightStreamError('timeout', 'no PublishResponse within ' + this._requestTimeout + ' ms'));
    }, this._requestTimeout);
  }

  _subscribe(stream, q, onMessage, options) {
    if (typeof onMessage !== 'function') {
      fail('invalid_argument', 'subscribe() needs an onMessage function');
    }
    const json = normalizeQuery(q);
    this._checkUsable(stream.owner, stream.name, Permission.READ, 'subscribe()');
    const sub = new Subscription(this, stream, json, onMessage, options);
    this._subs.add(sub);
    if (this._state === 'open') {
      try {
        this._sendSubscribe(sub);
      } catch (e) {
        this._subs.delete(sub);
        throw e;
      }
    }
    return sub._ready;
  }

  _sendSubscribe(sub) {
    if (this._transport === 'sse') {
      this._sseSubscribe(sub);
      return;
    }
    const requestId = this._nextId('s');
    const m = { owner: sub.stream.owner, stream: sub.stream.name, requestId };
    if (sub.query !== undefined) {
      m.query = sub.query;
    }
    if (sub._epoch !== null && sub._offset !== null) {
      /* resume: the server sends what we missed, or says it cannot */
      m.since = { epoch: sub._epoch, offset: sub._offset };
    }
    const entry = { kind: 'subscribe', sub, abandoned: false, resolve: null, reject: null, timer: null };
    this._addPending(requestId, entry);
    entry.timer = setTimeout(() => {
      /* keep the entry: a late success must still be undone */
      entry.abandoned = true;
      this._endSubscription(sub, new LightStreamError('timeout', 'no SubscribeResponse within ' + this._requestTimeout + ' ms'));
    }, this._requestTimeout);
    try {
      this._sendNow({ t: MessageType.SUBSCRIBE_REQUEST, m });
    } catch (e) {
      clearTimeout(entry.timer);
      this._pending.delete(requestId);
      throw e;
    }
  }

  _subscribeResponse(m) {
    const entry = this._pending.get(m.requestId);
    if (!entry || entry.kind !== 'subscribe') {
      return;
    }
    this._pending.delete(m.requestId);
    clearTimeout(entry.timer);
    const sub = entry.sub;
    if (m.ok !== true) {
      if (!entry.abandoned) {
        this._endSubscription(sub, serverError(m.error, 'server_error'));
      }
      return;
    }
    if (entry.abandoned || sub._state === 'ended') {
      this._sendUnsubscribe(m.subscriptionId).catch(() => {});
      return;
    }
    sub._serverId = m.subscriptionId;
    this._bySid.set(m.subscriptionId, sub);
    this._subscribed(sub, m);
  }

  /* sub's SubscribeResponse m (ok) arrived, over either transport. */
  _subscribed(sub, m) {
    const resubscribed = sub._settled;
    sub._state = 'active';
    sub._recovered = typeof m.recovered === 'boolean' ? m.recovered : null;
    if (typeof m.epoch === 'string' && Number.isSafeInteger(m.offset)) {
      if (m.recovered !== true) {
        /* a fresh start: from the stream's latest offset */
        sub._epoch = m.epoch;
        sub._offset = m.offset;
      }
    } else {
      /* the server could not say (history unavailable): start over */
      sub._epoch = null;
      sub._offset = null;
    }
    sub._settle(null);
    const info = { recovered: sub._recovered, epoch: sub._epoch, offset: sub._offset, resubscribed };
    for (const fn of sub._subscribed.slice()) {
      try {
        fn(info);
      } catch (e) {
        this._callbackFailed(e, 'subscribed listener');
      }
    }
    if (sub._recovered === true) {
      for (const fn of sub._recoveredFns.slice()) {
        try {
          fn(info);
        } catch (e) {
          this._callbackFailed(e, 'recovered listener');
        }
      }
    }
  }

  _deliver(m) {
    const sub = this._bySid.get(m.sub);
    if (!sub || sub._state !== 'active') {
      return; /* e.g. just unsubscribed */
    }
    this._deliverTo(sub, m);
  }

  /* A Data message m for sub, over either transport. */
  _deliverTo(sub, m) {
    const info = { owner: m.owner, stream: m.stream, subscription: sub };
    if (Number.isSafeInteger(m.offset)) {
      sub._offset = m.offset;
      info.offset = m.offset;
    }
    try {
      sub._onMessage(m.data, info);
    } catch (e) {
      this._callbackFailed(e, 'onMessage');
    }
  }

  /*
   * Ends sub for good; err (optional) rejects its subscribe() or goes to its
   * onError and, unless quiet, to the client's error listeners.
   */
  _endSubscription(sub, err, quiet) {
    if (sub._state === 'ended') {
      return;
    }
    const wasSettled = sub._settled;
    this._sseStop(sub);
    sub._state = 'ended';
    sub._error = err || null;
    this._subs.delete(sub);
    if (sub._serverId !== null) {
      this._bySid.delete(sub._serverId);
    }
    if (!wasSettled) {
      sub._settle(err || new LightStreamError('closed', 'unsubscribed'));
    } else if (err && err.code !== 'closed') {
      if (sub._onError) {
        try { sub._onError(err); } catch (e) { this._callbackFailed(e, 'onError'); }
      }
      if (!quiet) {
        this._emit('error', err);
      }
    }
    if (wasSettled) {
      for (const fn of sub._ended.slice()) {
        try { fn(err || null); } catch (e) { this._callbackFailed(e, 'ended listener'); }
      }
    }
  }

  _unsubscribe(sub) {
    if (sub._state === 'ended') {
      return Promise.resolve();
    }
    const sid = sub._serverId;
    this._endSubscription(sub, null);
    for (const entry of this._pending.values()) {
      if (entry.kind === 'subscribe' && entry.sub === sub) {
        entry.abandoned = true; /* its success will be undone */
      }
    }
    if (sid === null || this._state !== 'open') {
      return Promise.resolve();
    }
    return this._sendUnsubscribe(sid);
  }

  _sendUnsubscribe(sid) {
    if (this._state !== 'open') {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const id = 'u:' + sid;
      const entry = { kind: 'unsubscribe', resolve, reject, timer: null };
      try {
        this._addPending(id, entry);
        entry.timer = setTimeout(() => {
          this._settlePending(id, new LightStreamError('timeout', 'no UnsubscribeResponse within ' + this._requestTimeout + ' ms'));
        }, this._requestTimeout);
        this._sendNow({ t: MessageType.UNSUBSCRIBE_REQUEST, m: { subscriptionId: sid } });
      } catch (e) {
        this._settlePending(id, e);
      }
    });
  }

  /* ---------------- Server-Sent Events transport ----------------
   *
   * options.transport: 'websocket' (the default) uses only the WebSocket;
   * 'sse' subscribes with one EventSource per subscription
   * (docs/protocol.md, "Server-Sent Events") and publishes with the HTTP
   * publish endpoint; 'auto' starts with the WebSocket and, when it cannot
   * connect while the gateway's HTTP side answers (a proxy or network
   * without WebSocket, an upgrade refused), switches to SSE for the rest of
   * the client's life. The 'transport' event and the transport property say
   * which one is in use. Over SSE there is no session: permissions are
   * unknown (can() answers null) and the server checks each request.
   */

  _initTransport(o) {
    const t = o.transport === undefined ? 'websocket' : o.transport;
    if (TRANSPORTS.indexOf(t) < 0) {
      fail('invalid_argument', 'options.transport must be one of ' + TRANSPORTS.join(', '));
    }
    this._EventSource = o.EventSource || (typeof EventSource !== 'undefined' ? EventSource : null);
    this._fetch = o.fetch || (typeof fetch !== 'undefined' ? fetch.bind(globalThis) : null);
    const hasWs = typeof this._WebSocket === 'function';
    const hasSse = typeof this._EventSource === 'function' && typeof this._fetch === 'function';
    if (t === 'websocket' && !hasWs) {
      fail('unsupported', 'no WebSocket implementation: pass options.WebSocket');
    }
    if (t === 'sse' && !hasSse) {
      fail('unsupported', 'no EventSource or fetch implementation: pass options.EventSource and options.fetch');
    }
    if (t === 'auto' && !hasWs && !hasSse) {
      fail('unsupported', 'neither WebSocket nor EventSource is available');
    }
    /* 'auto' without a WebSocket is SSE from the start */
    this._transportOption = t === 'auto' && !hasWs ? 'sse' : t === 'auto' && !hasSse ? 'websocket' : t;
    this.httpUrl = resolveHttpUrl(o.httpUrl, this.url);
    this._transport = null;
  }

  _setTransport(name, reason) {
    if (this._transport !== name) {
      this._transport = name;
      this._emit('transport', { transport: name, reason });
    }
  }

  /*
   * The WebSocket of attempt gen never opened. Is the gateway's HTTP side
   * there (then WebSocket is what is blocked: SSE from now on), or is the
   * server unreachable (the usual reconnect)?
   */
  async _sseFallback(gen, err, code, reason) {
    let reachable = false;
    try {
      /* no-cors: any answer from the server resolves, a network failure rejects */
      await this._fetch(this.httpUrl + '/healthz', { mode: 'no-cors', cache: 'no-store' });
      reachable = true;
    } catch (e) {
      /* unreachable */
    }
    if (gen !== this._gen) {
      return;
    }
    if (reachable) {
      this._ws = null;
      this._sseOpen(gen, 'WebSocket unavailable' + (code ? ' (close ' + code + ')' : ''));
    } else if (err) {
      this._connectFailed(gen, err, false);
    } else {
      this._onSocketClose(code, reason);
    }
  }

  /* Open over SSE: nothing to authenticate first; subscriptions and publishes go out now. */
  _sseOpen(gen, reason) {
    if (gen !== this._gen) {
      return;
    }
    this._clearTimer('auth');
    const reconnected = this._everOpened;
    this._setTransport('sse', reason);
    this._session = { connectionId: null, expiresAt: null, permissions: null };
    this._state = 'open';
    this._everOpened = true;
    this._attempt = 0;
    this._freshTokenTried = false;
    for (const sub of this._subs) {
      if (!sub._es && !sub._sseTimer) {
        this._sseSubscribe(sub);
      }
    }
    const queued = this._outbox;
    this._outbox = [];
    for (const item of queued) {
      const m = JSON.parse(item.text).m;
      if (item.arm) {
        try {
          item.arm();
        } catch (e) {
          item.reject(e);
          continue;
        }
      }
      this._ssePost(m.owner, m.stream, m.data).then(
        () => this._settlePending(m.requestId, null),
        (e) => (m.requestId ? this._settlePending(m.requestId, e) : this._emit('error', e)));
    }
    {
      const info = Object.assign(this._sessionInfo(), { reconnected, transport: 'sse' });
      this._emit('open', info);
      this._emit('connected', info);
    }
    if (this._openWaiter) {
      const w = this._openWaiter;
      this._openWaiter = null;
      w.resolve(this._sessionInfo());
    }
  }

  /* POST /lightstream/publish/{owner}/{stream}: resolves once accepted (202). */
  async _ssePost(owner, stream, data) {
    let r;
    try {
      r = await this._fetch(this.httpUrl + PUBLISH_PATH + owner + '/' + stream + '?appKey=' + encodeURIComponent(this.appKey), {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + this._token, 'Content-Type': 'application/json' },
        body: JSON.stringify(data),
        cache: 'no-store',
      });
    } catch (e) {
      throw new LightStreamError('connection_failed', 'publish over HTTP failed: ' + (e && e.message), { cause: e });
    }
    if (r.status !== 202) {
      throw await httpError(r);
    }
  }

  _ssePublish(owner, stream, data, options) {
    const text = JSON.stringify(data);
    this._checkFrame(text);
    const p = this._ssePost(owner, stream, data);
    if (options.ack) {
      return p;
    }
    p.catch((e) => this._emit('error', e));
    return undefined;
  }

  _sseUrl(sub) {
    const params = new URLSearchParams({ appKey: this.appKey, token: this._token });
    if (sub.query !== undefined) {
      params.set('query', JSON.stringify(sub.query));
    }
    if (sub._epoch !== null && sub._offset !== null) {
      /* a new EventSource does not carry the old one's Last-Event-ID:
       * the subscription's position, as the WebSocket's since */
      params.set('lastEventId', sub._epoch + ':' + sub._offset);
    }
    return this.httpUrl + SSE_PATH + sub.stream.owner + '/' + sub.stream.name + '?' + params;
  }

  _sseSubscribe(sub) {
    this._sseStop(sub);
    const gen = ++sub._sseGen;
    const url = this._sseUrl(sub);
    let es;
    try {
      es = new this._EventSource(url);
    } catch (e) {
      this._sseRetry(sub, new LightStreamError('connection_failed', 'cannot open an EventSource: ' + (e && e.message), { cause: e }));
      return;
    }
    sub._es = es;
    const mine = () => sub._sseGen === gen && sub._state !== 'ended';
    es.addEventListener('subscribed', (ev) => {
      if (!mine()) {
        return;
      }
      let m = null;
      try { m = JSON.parse(ev.data); } catch (e) { /* below */ }
      if (!m || m.ok !== true) {
        return;
      }
      sub._sseAttempt = 0;
      this._subscribed(sub, m);
    });
    es.addEventListener('data', (ev) => {
      if (!mine() || sub._state !== 'active') {
        return;
      }
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch (e) {
        this._emit('error', new LightStreamError('protocol_error', 'the server sent invalid JSON'));
        return;
      }
      this._deliverTo(sub, m); /* its offset is the event's id */
    });
    es.addEventListener('error', (ev) => {
      if (!mine()) {
        return;
      }
      if (typeof ev.data === 'string') {
        /* the server's event: error, after which it ends the response */
        let m = null;
        try { m = JSON.parse(ev.data); } catch (e) { /* below */ }
        this._sseStop(sub);
        this._sseFailed(sub, serverError(m, 'server_error'));
        return;
      }
      if (es.readyState === 2) {
        /* refused (not 200) or unreachable: EventSource gives up; learn why */
        this._sseStop(sub);
        this._sseDiagnose(sub, url, sub._sseGen);
      } else if (sub._state === 'active') {
        sub._state = 'pending'; /* EventSource reconnects by itself, with Last-Event-ID */
      }
    });
  }

  /* An EventSource cannot read the status of a refusal: ask once more with fetch. */
  async _sseDiagnose(sub, url, gen) {
    const ctl = typeof AbortController !== 'undefined' ? new AbortController() : null;
    let err;
    try {
      const r = await this._fetch(url, { cache: 'no-store', signal: ctl ? ctl.signal : undefined });
      if (r.status === 200) {
        if (ctl) { ctl.abort(); }
        err = new LightStreamError('connection_failed', 'the event stream was interrupted');
      } else {
        err = await httpError(r);
      }
    } catch (e) {
      err = new LightStreamError('connection_failed', 'cannot reach ' + this.httpUrl + ': ' + (e && e.message), { cause: e });
    }
    if (sub._sseGen === gen && sub._state !== 'ended') {
      this._sseFailed(sub, err);
    }
  }

  /* A stream ended with err: end the subscription, or come back (new token, backoff). */
  _sseFailed(sub, err) {
    const final = ['forbidden', 'query_too_costly', 'invalid_query', 'bad_request', 'not_found', 'too_large'];
    if (final.indexOf(err.code) >= 0) {
      this._endSubscription(sub, err);
      return;
    }
    const tokenProblem = err.code === 'auth_failed' || err.code === 'token_expired' || err.code === 'token_revoked';
    if (err.code === 'token_revoked') {
      this._emit('revoked', { error: err, willReconnect: Boolean(this._getToken) && this._reconnect.enabled });
    }
    if (tokenProblem && !this._getToken) {
      this._endSubscription(sub, err);
      return;
    }
    if (!this._reconnect.enabled) {
      this._endSubscription(sub, err);
      return;
    }
    this._sseRetry(sub, err, tokenProblem);
  }

  _sseRetry(sub, err, freshToken) {
    const r = this._reconnect;
    sub._sseAttempt = (sub._sseAttempt || 0) + 1;
    if (sub._sseAttempt > r.maxAttempts) {
      this._endSubscription(sub, new LightStreamError(err.code, 'gave up after ' + r.maxAttempts + ' attempts: ' + err.message, { cause: err }));
      return;
    }
    const base = Math.min(r.maxDelay, r.initialDelay * Math.pow(r.factor, sub._sseAttempt - 1));
    const delay = Math.round(base * (1 - Math.min(Math.max(r.jitter, 0), 1) * Math.random()));
    if (sub._state === 'active') {
      sub._state = 'pending';
    }
    const gen = sub._sseGen;
    sub._sseTimer = setTimeout(async () => {
      sub._sseTimer = null;
      if (sub._sseGen !== gen || sub._state === 'ended' || this._transport !== 'sse') {
        return;
      }
      if (freshToken) {
        try {
          await this._sseFreshToken();
        } catch (e) {
          this._sseRetry(sub, e instanceof LightStreamError ? e : new LightStreamError('auth_failed', 'getToken() failed: ' + (e && e.message), { cause: e }), true);
          return;
        }
        if (sub._sseGen !== gen || sub._state === 'ended') {
          return;
        }
      }
      this._sseSubscribe(sub);
    }, delay);
    this._emit('reconnecting', { attempt: sub._sseAttempt, delay, error: err, subscription: sub });
  }

  /* One getToken() for every stream that needs a new token at the same time. */
  _sseFreshToken() {
    if (!this._sseTokenPromise) {
      const before = this._token;
      this._sseTokenPromise = Promise.resolve()
        .then(() => (this._token !== before ? this._token : this._getToken()))
        .then((t) => { this._token = tokenValue(t); })
        .finally(() => { this._sseTokenPromise = null; });
    }
    return this._sseTokenPromise;
  }

  _sseStop(sub) {
    if (sub._es) {
      try { sub._es.close(); } catch (e) { /* closed */ }
      sub._es = null;
    }
    if (sub._sseTimer) {
      clearTimeout(sub._sseTimer);
      sub._sseTimer = null;
    }
    sub._sseGen = (sub._sseGen || 0) + 1;
  }
}

/* Create a client; see Client's constructor for the options. */
function createClient(options) {
  return new Client(options);
}

/*
 * The contract rules this client applies on its side, for the test that
 * checks them against the server's one home (tests/browser/contract.test.mjs
 * against common/ls_proto.c): close codes, HTTP statuses, the identifier
 * grammar and the permission check.
 */
const contract = Object.freeze({
  closeCodes: Object.freeze(Object.fromEntries(Object.entries(CLOSE_CODE_ERRORS).map(([k, v]) => [k, v[0]]))),
  httpStatuses: Object.freeze(Object.assign({}, HTTP_STATUS_ERRORS)),
  validAppKey: (s) => typeof s === 'string' && APP_KEY_RE.test(s),
  validStream: (s) => typeof s === 'string' && STREAM_RE.test(s),
  permits: (permissions, owner, stream, bit) => permits(permissions, owner, stream, bit),
});

const LightStream = Object.freeze({
  version: VERSION,
  createClient,
  query,
  validateQuery,
  Client,
  Stream,
  Subscription,
  Query,
  LightStreamError,
  ErrorCode,
  MessageType,
  Permission,
  QUERY_LIMITS,
  contract,
});

return LightStream;
}));
