/**
 * The daemon's HTTP API over any ShoalApi, under /api/v0 (RPC style, after Kubo's):
 * GET for reads, POST for changes, JSON bodies, and `{ "error": { "code", "message" } }`
 * with a status that fits the code. Byte streams (cat) are chunked; an error after the
 * first byte is reported in the `X-Stream-Error` trailer, so a client never mistakes a
 * cut stream for a whole one. A pub/sub subscription is a stream of server-sent events that
 * lasts until the client leaves or the server closes. Later issues add their routes beside
 * these, one `app.get/post` per ShoalApi call, before the server listens.
 */
import { once } from 'node:events'
import { STATUS_CODES } from 'node:http'
import { isIP, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import multipart from '@fastify/multipart'
import { anySignal } from 'any-signal'
import { parseCidProfile } from '../core/content/cid-profile.ts'
import { parseCid } from '../core/content/cid.ts'
import { isShoalError, ShoalError, type ErrorCode } from '../core/errors.ts'
import { GOSSIP_LIMITS } from '../core/gossip/messages.ts'
import { KAD_LIMITS } from '../core/kad/messages.ts'
import type { AddCandidate, PubSubSubscription, ShoalApi } from '../node/api.ts'
import { ADD_PATH_LENGTH_MAX } from '../node/shoal-node.ts'
import { EVENT_STREAM_TYPE, formatComment, formatEvent } from './event-stream.ts'
import {
  API_PREFIX, encodeStreamError, errorBody, FETCH_EVENT_ERROR, FETCH_EVENT_PROGRESS, FETCH_EVENT_RESULT, PART_TYPE_DIRECTORY, PART_TYPE_SYMLINK, PUBSUB_EVENT_DROPPED, PUBSUB_EVENT_ERROR,
  pubsubMessageToJson, STREAM_ERROR_TRAILER,
} from './wire.ts'

const STATUS_BY_CODE: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  INVALID_CID: 400,
  INVALID_CONFIG: 400,
  NOT_A_DIRECTORY: 400,
  NOT_A_FILE: 400,
  NOT_FOUND: 404,
  PATH_NOT_FOUND: 404,
  PIN_NOT_FOUND: 404,
  REPO_MISSING: 500,
  REPO_EXISTS: 409,
  REPO_LOCKED: 409,
  BLOCK_CORRUPT: 500,
  QUOTA_EXCEEDED: 507,
  DISK_FULL: 507,
  ABORTED: 499,
  DAEMON_UNREACHABLE: 502,
  FORBIDDEN: 403,
  OFFLINE: 503,
  DIAL_FAILED: 502,
  TOO_MANY_FETCHES: 429,
  INVALID_CONTENT: 422,
  FETCH_FAILED: 502,
  BUSY: 503,
}

/** Connections the kernel queues before the server accepts them (capped by net.core.somaxconn). */
const LISTEN_BACKLOG = 4096

export interface ApiServer {
  /** http://host:port as bound (the real port when 0 was asked) */
  readonly url: string
  close(): Promise<void>
}

export interface ApiServerOptions {
  host: string
  port: number
  /** Prometheus text for GET /metrics; the route exists only when given. */
  metricsText?: () => Promise<string>
  /** The largest pub/sub message body read (config pubsub.messageBytesMax); default the wire's bound, 1 MiB. */
  pubsubMessageBytesMax?: number
  /** How often an idle event stream gets a `: keepalive` comment, so that proxies keep it open; default 15 s. */
  eventStreamKeepaliveMs?: number
  /**
   * Requests served at once, event streams included (config api.requestsInFlightMax); one
   * more is answered 503 BUSY at once, before its body is read. Default 256.
   */
  requestsInFlightMax?: number
  /**
   * Of those, reads of content (cat) at once (config api.readsInFlightMax): each holds a
   * block, up to 1 MiB, however little of it is asked for. Default 32.
   */
  readsInFlightMax?: number
  /** A request refused for excess: 'busy' past requestsInFlightMax, 'reads-busy' past readsInFlightMax. For the node's metrics. */
  onRefused?: (reason: ApiRefusal) => void
}

export type ApiRefusal = 'busy' | 'reads-busy'

const REQUESTS_IN_FLIGHT_MAX = 256
const READS_IN_FLIGHT_MAX = 32

/** Requests of one kind being answered, at most `max`: one more is refused with BUSY and counted. */
class InFlight {
  #count = 0
  readonly #max: number
  readonly #what: string
  readonly #refusal: ApiRefusal
  readonly #onRefused: ((reason: ApiRefusal) => void) | undefined

  constructor(max: number, what: string, refusal: ApiRefusal, onRefused: ((reason: ApiRefusal) => void) | undefined) {
    this.#max = max
    this.#what = what
    this.#refusal = refusal
    this.#onRefused = onRefused
  }

  /** Counts the request until its response closes (sent, streamed, hijacked or cut), or throws BUSY. */
  enter(reply: FastifyReply): void {
    if (this.#count >= this.#max) {
      this.#onRefused?.(this.#refusal)
      throw new ShoalError('BUSY', `${this.#count} ${this.#what} are being served, the most the daemon allows; try again`)
    }
    this.#count++
    reply.raw.once('close', () => this.#count--)
  }
}

const EVENT_STREAM_KEEPALIVE_MS = 15_000

export async function startApiServer(api: ShoalApi, options: ApiServerOptions): Promise<ApiServer> {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024, clientErrorHandler: answerUnparsableRequest })
  await app.register(multipart, {
    limits: { fieldNameSize: 64, fieldSize: 1024, fields: 16, fileSize: Number.POSITIVE_INFINITY, files: Number.POSITIVE_INFINITY, headerPairs: 32 },
  })
  // A raw body is one file to import: hand the stream to the route unread.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload))

  // Each request holds memory (sockets, bodies, answers being built) until it ends: their
  // number is what keeps the daemon's memory bounded under a flood of clients.
  const requests = new InFlight(options.requestsInFlightMax ?? REQUESTS_IN_FLIGHT_MAX, 'API requests (api.requestsInFlightMax)', 'busy', options.onRefused)
  const reads = new InFlight(options.readsInFlightMax ?? READS_IN_FLIGHT_MAX, 'reads of content (api.readsInFlightMax)', 'reads-busy', options.onRefused)
  app.addHook('onRequest', async (request, reply) => {
    requests.enter(reply)
    refuseBrowserAttacks(request)
  })
  app.setErrorHandler((error, _request, reply) => sendError(reply, error))
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new ShoalError('INVALID_ARGUMENT', `no such API route: ${request.method} ${request.url.split('?')[0]}`), 404)
  })

  app.get(`${API_PREFIX}/id`, () => api.id())
  app.post(`${API_PREFIX}/add`, async (request, reply) => {
    const query = queryOf(request)
    const cidProfile = query['cid-profile'] === undefined ? undefined : parseCidProfile(query['cid-profile'])
    const pin = query['pin'] === undefined ? undefined : parseBoolean(query['pin'], 'pin')
    const roots = await api.add(requestCandidates(request), { cidProfile, pin, signal: abortOnClose(reply) })
    return { roots }
  })
  app.get(`${API_PREFIX}/cat`, async (request, reply) => {
    reads.enter(reply)
    const query = queryOf(request)
    const signal = abortOnClose(reply)
    const chunks = api.cat(requiredArg(query), {
      offset: optionalInteger(query['offset'], 'offset'),
      length: optionalInteger(query['length'], 'length'),
      signal,
    })[Symbol.asyncIterator]()
    // Resolve the path and read the first bytes before the status line goes out, so that a
    // bad path is a proper error response rather than an empty 200.
    const first = await chunks.next()
    let streamError = ''
    reply.trailer(STREAM_ERROR_TRAILER, async () => streamError)
    reply.type('application/octet-stream')
    return reply.send(Readable.from((async function* () {
      if (first.done === true) return
      yield first.value
      try {
        for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) yield next.value
      } catch (error) {
        streamError = encodeStreamError(error)
      }
    })(), { highWaterMark: 1 }))
  })
  app.get(`${API_PREFIX}/stat`, (request) => api.stat(requiredArg(queryOf(request))))
  app.get(`${API_PREFIX}/ls`, async (request) => ({ entries: await api.ls(requiredArg(queryOf(request))) }))
  app.post(`${API_PREFIX}/pin/add`, (request) => {
    const query = queryOf(request)
    const recursive = query['recursive'] === undefined ? true : parseBoolean(query['recursive'], 'recursive')
    return api.pinAdd(requiredArg(query), { recursive })
  })
  app.post(`${API_PREFIX}/pin/rm`, (request) => api.pinRm(requiredArg(queryOf(request))))
  app.get(`${API_PREFIX}/pin/ls`, async () => ({ pins: await api.pinLs() }))
  app.post(`${API_PREFIX}/repo/gc`, () => api.gc())
  app.get(`${API_PREFIX}/repo/stat`, () => api.repoStat())
  app.post(`${API_PREFIX}/repo/verify`, () => api.repoVerify())
  app.get(`${API_PREFIX}/peers`, async () => ({ peers: await api.peers() }))
  app.post(`${API_PREFIX}/swarm/connect`, (request) => {
    const query = queryOf(request)
    return api.swarmConnect(requiredArg(query), { waitDirectMs: optionalInteger(query['wait-direct-ms'], 'wait-direct-ms') })
  })
  app.post(`${API_PREFIX}/swarm/disconnect`, async (request) => {
    await api.swarmDisconnect(requiredArg(queryOf(request)))
    return {}
  })
  app.get(`${API_PREFIX}/stats`, () => api.stats())
  app.get(`${API_PREFIX}/dht/find-peer`, (request) => api.dhtFindPeer(requiredArg(queryOf(request))))
  app.get(`${API_PREFIX}/dht/find-providers`, (request) => {
    const query = queryOf(request)
    return api.dhtFindProviders(requiredArg(query), { max: optionalInteger(query['max'], 'max') })
  })
  app.post(`${API_PREFIX}/dht/provide`, (request) => api.dhtProvide(requiredArg(queryOf(request))))
  app.get(`${API_PREFIX}/dht/get`, async (request) => {
    const { value, ...result } = await api.dhtGet(requiredArg(queryOf(request)))
    return { value: Buffer.from(value).toString('base64'), ...result }
  })
  app.post(`${API_PREFIX}/dht/put`, async (request) => {
    const key = requiredArg(queryOf(request))
    if (request.headers['content-type'] !== 'application/octet-stream') throw new ShoalError('INVALID_ARGUMENT', 'the value must be sent as application/octet-stream')
    return api.dhtPut(key, await readBody(request.body as AsyncIterable<Uint8Array>, DHT_VALUE_BYTES_MAX))
  })
  app.get(`${API_PREFIX}/dht/table`, () => api.dhtTable())
  const pubsubMessageBytesMax = options.pubsubMessageBytesMax ?? GOSSIP_LIMITS.messageDataBytesMax
  app.post(`${API_PREFIX}/pubsub/pub`, async (request) => {
    const topic = topicArg(queryOf(request))
    if (request.headers['content-type'] !== 'application/octet-stream') throw new ShoalError('INVALID_ARGUMENT', 'the message must be sent as application/octet-stream')
    // Fastify passes no body at all for an empty one.
    const data = request.body === undefined ? new Uint8Array() : await readBody(request.body as AsyncIterable<Uint8Array>, pubsubMessageBytesMax, 'pubsub.messageBytesMax')
    return api.pubsubPublish(topic, data)
  })
  app.get(`${API_PREFIX}/pubsub/ls`, async () => ({ topics: await api.pubsubTopics() }))
  app.get(`${API_PREFIX}/pubsub/peers`, async (request) => ({ peers: await api.pubsubPeers(topicArg(queryOf(request))) }))
  // Every event stream ends when the server closes: they would hold app.close() open.
  const closing = new AbortController()
  const keepaliveMs = options.eventStreamKeepaliveMs ?? EVENT_STREAM_KEEPALIVE_MS
  app.get(`${API_PREFIX}/pubsub/sub`, (request, reply) => serveSubscription(api, topicArg(queryOf(request)), reply, keepaliveMs, closing.signal))
  app.post(`${API_PREFIX}/fetch`, (request, reply) => serveFetch(api, queryOf(request), reply, closing.signal))
  app.get(`${API_PREFIX}/swarm/ledger`, async () => ({ peers: await api.swarmLedger() }))
  if (options.metricsText !== undefined) {
    const metricsText = options.metricsText
    app.get('/metrics', async (_request, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(await metricsText()))
  }

  // Node's default backlog (511) made the kernel reset connections of a burst of 1,000 clients.
  await app.listen({ host: options.host, port: options.port, backlog: LISTEN_BACKLOG })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('API server has no TCP address')
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  let closed: Promise<void> | undefined
  return {
    url: `http://${host}:${address.port}`,
    close: () => {
      closing.abort(new ShoalError('OFFLINE', 'the daemon is stopping'))
      return closed ??= app.close()
    },
  }
}

/**
 * GET pubsub/sub as server-sent events. The node subscribes before the status line goes
 * out, so a bad topic is an ordinary JSON error. Then: one `data:` event per message (the
 * JSON of pubsubMessageToJson); a `dropped` event with the running count before a message
 * that follows a loss (the reader, or the network between, was too slow and the node's
 * bounded buffer dropped the oldest); a `: keepalive` comment every `keepaliveMs`; and an
 * `error` event if the subscription ends while the client is still there (pub/sub or the
 * server stopping). The client leaving ends the subscription, and the node unsubscribes from
 * the topic when no one else listens.
 */
async function serveSubscription(api: ShoalApi, topic: string, reply: FastifyReply, keepaliveMs: number, closing: AbortSignal): Promise<void> {
  const gone = abortOnClose(reply)
  // Ends with the client or the server; the listener on the server's signal goes with the stream.
  const ended = new AbortController()
  const end = (): void => ended.abort()
  gone.addEventListener('abort', end, { once: true })
  closing.addEventListener('abort', end, { once: true })
  if (closing.aborted) end()
  const signal = ended.signal
  let subscription: PubSubSubscription
  try {
    subscription = await api.pubsubSubscribe(topic, { signal })
  } catch (error) {
    closing.removeEventListener('abort', end)
    throw error
  }
  reply.hijack()
  const response = reply.raw
  response.writeHead(200, { 'content-type': `${EVENT_STREAM_TYPE}; charset=utf-8`, 'cache-control': 'no-cache', 'x-accel-buffering': 'no' })
  response.flushHeaders()
  // Skipped while the stream is full: the messages waiting are proof enough of life.
  const keepalive = setInterval(() => {
    if (!response.writableNeedDrain) response.write(formatComment('keepalive'))
  }, keepaliveMs)
  let droppedReported = 0
  try {
    for await (const message of subscription) {
      if (subscription.droppedCount !== droppedReported) {
        droppedReported = subscription.droppedCount
        response.write(formatEvent(PUBSUB_EVENT_DROPPED, JSON.stringify({ droppedCount: droppedReported })))
      }
      if (!response.write(formatEvent('message', JSON.stringify(pubsubMessageToJson(message))))) await once(response, 'drain', { signal })
    }
    if (closing.aborted && !gone.aborted) throw closing.reason
  } catch (error) {
    if (!gone.aborted) response.write(formatEvent(PUBSUB_EVENT_ERROR, JSON.stringify(errorBody(closing.aborted ? closing.reason : error))))
  } finally {
    clearInterval(keepalive)
    closing.removeEventListener('abort', end)
    subscription.close()
    response.end()
  }
}

/**
 * POST fetch?arg=<cid>[&order=rarest|in-order][&pin=false] as server-sent events: a
 * `progress` event (JSON FetchProgress) at least every 250 ms while the download runs, then
 * one `result` event (JSON FetchResult) or one `error` event. The client leaving aborts the
 * fetch (what was stored stays, and a new fetch resumes from it).
 */
async function serveFetch(api: ShoalApi, query: Query, reply: FastifyReply, closing: AbortSignal): Promise<void> {
  const cid = requiredArg(query)
  const order = query['order'] ?? 'rarest'
  if (order !== 'rarest' && order !== 'in-order') throw new ShoalError('INVALID_ARGUMENT', `order must be 'rarest' or 'in-order', not '${order.slice(0, 40)}'`)
  const pin = query['pin'] === undefined ? undefined : parseBoolean(query['pin'], 'pin')
  parseCid(cid)
  const gone = abortOnClose(reply)
  const signal = anySignal([gone, closing])
  reply.hijack()
  const response = reply.raw
  response.writeHead(200, { 'content-type': `${EVENT_STREAM_TYPE}; charset=utf-8`, 'cache-control': 'no-cache', 'x-accel-buffering': 'no' })
  response.flushHeaders()
  try {
    const result = await api.fetch(cid, {
      order,
      pin,
      signal,
      // A progress event that finds the stream full is skipped: the next one supersedes it.
      onProgress: (progress) => void (response.writableNeedDrain || response.write(formatEvent(FETCH_EVENT_PROGRESS, JSON.stringify(progress)))),
    })
    response.write(formatEvent(FETCH_EVENT_RESULT, JSON.stringify(result)))
  } catch (error) {
    if (!gone.aborted) response.write(formatEvent(FETCH_EVENT_ERROR, JSON.stringify(errorBody(error))))
  } finally {
    signal.clear()
    response.end()
  }
}

/**
 * The API has no credentials, so a web page must not be able to use it through the
 * user's browser: a request from another origin is refused (cross-site request forgery),
 * and so is a Host that is a name other than localhost (DNS rebinding, where a hostile
 * name resolves to 127.0.0.1 and the page becomes same-origin). Command-line clients send
 * no Origin and an IP or localhost Host.
 */
function refuseBrowserAttacks(request: FastifyRequest): void {
  const host = request.headers.host ?? ''
  const hostname = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')
  if (hostname !== 'localhost' && isIP(hostname) === 0) {
    throw new ShoalError('FORBIDDEN', `requests for host '${host.slice(0, 100)}' are refused: address the API by IP or localhost`)
  }
  const origin = request.headers.origin
  if (origin !== undefined && origin !== `http://${host}`) {
    throw new ShoalError('FORBIDDEN', `cross-origin request from ${origin.slice(0, 100)} refused`)
  }
}

/** The add candidates of a request: multipart parts (one per file, folder or symlink) or one raw body. */
async function* requestCandidates(request: FastifyRequest): AsyncGenerator<AddCandidate> {
  if (!request.isMultipart()) {
    const query = queryOf(request)
    if (!(request.body instanceof Readable)) throw new ShoalError('INVALID_ARGUMENT', 'add needs a multipart/form-data or application/octet-stream body')
    yield { kind: 'file', path: query['name'] ?? '', content: request.body }
    return
  }
  for await (const part of malformedAsInvalid(request.parts())) {
    if (part.type !== 'file') continue
    const path = decodePartPath(part.filename)
    if (part.mimetype === PART_TYPE_DIRECTORY) {
      part.file.resume()
      yield { kind: 'directory', path }
    } else if (part.mimetype === PART_TYPE_SYMLINK) {
      yield { kind: 'symlink', path, target: await symlinkTarget(malformedAsInvalid(part.file), path) }
    } else {
      yield { kind: 'file', path, content: malformedAsInvalid(part.file) }
    }
  }
}

/** Reads a symlink part's body, refusing one longer than a path may be before it is all in memory. */
async function symlinkTarget(body: AsyncIterable<Uint8Array>, path: string): Promise<string> {
  const chunks: Uint8Array[] = []
  let bytes = 0
  for await (const chunk of body) {
    bytes += chunk.byteLength
    if (bytes > ADD_PATH_LENGTH_MAX) throw new ShoalError('INVALID_ARGUMENT', `symlink target of ${path} is longer than ${ADD_PATH_LENGTH_MAX} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The multipart parser's errors are the client's malformed body, not our failure. */
async function* malformedAsInvalid<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* source
  } catch (error) {
    if (isShoalError(error)) throw error
    throw new ShoalError('INVALID_ARGUMENT', `malformed multipart body: ${(error as Error).message}`, { cause: error })
  }
}

function decodePartPath(filename: string): string {
  try {
    return decodeURIComponent(filename)
  } catch {
    throw new ShoalError('INVALID_ARGUMENT', `part filename '${filename.slice(0, 64)}' is not URI-encoded`)
  }
}

/** A signal that fires when the client goes away before the response is complete. */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new ShoalError('ABORTED', 'the client closed the connection'))
  })
  return controller.signal
}

type Query = Record<string, string | undefined>

/** Fastify parses the query string into an object of strings (no schema: each route checks its own). */
/** A DHT value larger than the wire bound is refused by the node; reading stops just past it. */
const DHT_VALUE_BYTES_MAX = KAD_LIMITS.valueBytesMax

async function readBody(body: AsyncIterable<Uint8Array>, bytesMax: number, setting?: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of body) {
    total += chunk.byteLength
    if (total > bytesMax) throw new ShoalError('INVALID_ARGUMENT', `the body is larger than ${bytesMax} bytes${setting === undefined ? '' : ` (${setting})`}`)
    chunks.push(chunk)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

function queryOf(request: FastifyRequest): Query {
  return request.query as Query
}

function requiredArg(query: Query): string {
  const arg = query['arg']
  if (typeof arg !== 'string' || arg.length === 0) throw new ShoalError('INVALID_ARGUMENT', "query parameter 'arg' is missing or repeated")
  return arg
}

/** A topic: present, but the node judges it (an empty one too, with a message that names the rule). */
function topicArg(query: Query): string {
  const arg = query['arg']
  if (typeof arg !== 'string') throw new ShoalError('INVALID_ARGUMENT', "query parameter 'arg' (the topic) is missing or repeated")
  return arg
}

function optionalInteger(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 0) throw new ShoalError('INVALID_ARGUMENT', `'${name}' must be a non-negative integer`)
  return value
}

function parseBoolean(text: string, name: string): boolean {
  if (text === 'true') return true
  if (text === 'false') return false
  throw new ShoalError('INVALID_ARGUMENT', `'${name}' must be true or false`)
}

/**
 * What Node's HTTP parser refuses before Fastify sees it (a request line and headers over
 * 16 KiB, a malformed request): answered in the API's error shape, as every other error is.
 */
function answerUnparsableRequest(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, message] = error.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'the request line and headers are larger than 16 KiB (a query parameter too long?)']
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'the request took too long to arrive'] : [400, `malformed HTTP request (${error.code ?? error.message})`]
  const body = JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message } })
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`)
  socket.destroy(error)
}

function sendError(reply: FastifyReply, error: unknown, status?: number): FastifyReply {
  const body = errorBody(error)
  const fastifyStatus = (error as { statusCode?: number }).statusCode ?? 500
  const chosen = status ?? (body.code === 'INTERNAL' || !isShoalError(error) ? fastifyStatus : STATUS_BY_CODE[error.code])
  return reply.status(chosen).type('application/json').send({ error: body })
}
