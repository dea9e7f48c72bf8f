/**
 * HttpClient: ShoalApi over a daemon's HTTP API (api/http-server.ts). Adds stream their
 * files as multipart parts without buffering; cat streams the response and raises the
 * X-Stream-Error trailer if the daemon reports one; a pub/sub subscription reads the
 * daemon's server-sent events as they come, only as fast as they are iterated (the daemon
 * drops the oldest for a reader that falls behind, and says how many). Uses node:http
 * because fetch does not expose trailers.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { anySignal, type ClearableSignal } from 'any-signal'
import { isShoalError, ShoalError, systemErrorCode } from '../core/errors.ts'
import type {
  DhtPeer, DhtQueryResult, DhtTable,
  AddCandidate, AddedRoot, ConnectResult, AddOptions, CatOptions, DirectoryEntry, EntryStat, FetchOptions, FetchProgress, FetchResult, GcResult, LedgerEntry, NodeIdentity, NodeStats,
  PeerInfo, PinInfo, PubSubMessage, PubSubPublished, PubSubSubscribeOptions, PubSubSubscription, RepoStat, ShoalApi, VerifyResult,
} from '../node/api.ts'
import { EventStreamParser } from './event-stream.ts'
import {
  API_PREFIX, decodeStreamError, errorFromBody, FETCH_EVENT_ERROR, FETCH_EVENT_PROGRESS, FETCH_EVENT_RESULT, PART_TYPE_DIRECTORY, PART_TYPE_SYMLINK, PUBSUB_EVENT_DROPPED, PUBSUB_EVENT_ERROR,
  pubsubMessageFromJson, type PubSubMessageJson, STREAM_ERROR_TRAILER, type ErrorBody,
} from './wire.ts'

type Query = Record<string, string | number | boolean | undefined>

interface RequestOptions {
  query?: Query
  body?: AsyncIterable<Uint8Array> | Iterable<Uint8Array>
  contentType?: string
  signal?: AbortSignal
}

export class HttpClient implements ShoalApi {
  readonly url: string

  constructor(url: string) {
    this.url = url.replace(/\/+$/, '')
  }

  id(): Promise<NodeIdentity> {
    return this.#json('GET', 'id')
  }

  async add(candidates: AsyncIterable<AddCandidate>, options: AddOptions = {}): Promise<AddedRoot[]> {
    const boundary = `shoal-${randomBytes(12).toString('hex')}`
    const { roots } = await this.#json<{ roots: AddedRoot[] }>('POST', 'add', {
      query: { 'cid-profile': options.cidProfile, pin: options.pin },
      body: multipartBody(candidates, boundary),
      contentType: `multipart/form-data; boundary=${boundary}`,
      signal: options.signal,
    })
    return roots
  }

  async *cat(path: string, options: CatOptions = {}): AsyncIterable<Uint8Array> {
    const response = await this.#request('GET', 'cat', { query: { arg: path, offset: options.offset, length: options.length }, signal: options.signal })
    yield* response
    const trailer = response.trailers[STREAM_ERROR_TRAILER]
    if (trailer !== undefined && trailer !== '') throw errorFromBody(decodeStreamError(trailer))
  }

  stat(path: string): Promise<EntryStat> {
    return this.#json('GET', 'stat', { query: { arg: path } })
  }

  async ls(path: string): Promise<DirectoryEntry[]> {
    return (await this.#json<{ entries: DirectoryEntry[] }>('GET', 'ls', { query: { arg: path } })).entries
  }

  pinAdd(cid: string, options: { recursive?: boolean } = {}): Promise<PinInfo> {
    return this.#json('POST', 'pin/add', { query: { arg: cid, recursive: options.recursive } })
  }

  pinRm(cid: string): Promise<PinInfo> {
    return this.#json('POST', 'pin/rm', { query: { arg: cid } })
  }

  async pinLs(): Promise<PinInfo[]> {
    return (await this.#json<{ pins: PinInfo[] }>('GET', 'pin/ls')).pins
  }

  gc(): Promise<GcResult> {
    return this.#json('POST', 'repo/gc')
  }

  repoStat(): Promise<RepoStat> {
    return this.#json('GET', 'repo/stat')
  }

  repoVerify(): Promise<VerifyResult> {
    return this.#json('POST', 'repo/verify')
  }

  async peers(): Promise<PeerInfo[]> {
    return (await this.#json<{ peers: PeerInfo[] }>('GET', 'peers')).peers
  }

  swarmConnect(address: string, options: { waitDirectMs?: number } = {}): Promise<ConnectResult> {
    const query: Record<string, string> = { arg: address }
    if (options.waitDirectMs !== undefined) query['wait-direct-ms'] = String(options.waitDirectMs)
    return this.#json('POST', 'swarm/connect', { query })
  }

  async swarmDisconnect(peerId: string): Promise<void> {
    await this.#json('POST', 'swarm/disconnect', { query: { arg: peerId } })
  }

  stats(): Promise<NodeStats> {
    return this.#json('GET', 'stats')
  }

  dhtFindPeer(peerId: string): Promise<DhtPeer & DhtQueryResult> {
    return this.#json('GET', 'dht/find-peer', { query: { arg: peerId } })
  }

  dhtFindProviders(cid: string, options: { max?: number } = {}): Promise<{ providers: DhtPeer[] } & DhtQueryResult> {
    return this.#json('GET', 'dht/find-providers', { query: { arg: cid, max: options.max } })
  }

  dhtProvide(cid: string): Promise<{ storedCount: number } & DhtQueryResult> {
    return this.#json('POST', 'dht/provide', { query: { arg: cid } })
  }

  async dhtGet(key: string): Promise<{ value: Uint8Array } & DhtQueryResult> {
    const { value, ...result } = await this.#json<{ value: string } & DhtQueryResult>('GET', 'dht/get', { query: { arg: key } })
    return { value: new Uint8Array(Buffer.from(value, 'base64')), ...result }
  }

  dhtPut(key: string, value: Uint8Array): Promise<{ storedCount: number } & DhtQueryResult> {
    return this.#json('POST', 'dht/put', { query: { arg: key }, contentType: 'application/octet-stream', body: [value] })
  }

  dhtTable(): Promise<DhtTable> {
    return this.#json('GET', 'dht/table')
  }

  pubsubPublish(topic: string, data: Uint8Array): Promise<PubSubPublished> {
    return this.#json('POST', 'pubsub/pub', { query: { arg: topic }, contentType: 'application/octet-stream', body: [data] })
  }

  async pubsubTopics(): Promise<string[]> {
    return (await this.#json<{ topics: string[] }>('GET', 'pubsub/ls')).topics
  }

  async pubsubPeers(topic: string): Promise<string[]> {
    return (await this.#json<{ peers: string[] }>('GET', 'pubsub/peers', { query: { arg: topic } })).peers
  }

  async pubsubSubscribe(topic: string, options: PubSubSubscribeOptions = {}): Promise<PubSubSubscription> {
    const closed = new AbortController()
    const signal = anySignal([closed.signal, options.signal])
    try {
      const response = await this.#request('GET', 'pubsub/sub', { query: { arg: topic }, signal })
      return new EventStreamSubscription(topic, response, closed, signal, this.url)
    } catch (error) {
      signal.clear()
      throw error
    }
  }

  async fetch(cid: string, options: FetchOptions = {}): Promise<FetchResult> {
    const response = await this.#request('POST', 'fetch', { query: { arg: cid, order: options.order, pin: options.pin }, signal: options.signal })
    const parser = new EventStreamParser()
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        for (const { event, data } of parser.push(chunk)) {
          if (event === FETCH_EVENT_PROGRESS) options.onProgress?.(JSON.parse(data) as FetchProgress)
          else if (event === FETCH_EVENT_RESULT) return JSON.parse(data) as FetchResult
          else if (event === FETCH_EVENT_ERROR) throw errorFromBody(JSON.parse(data) as ErrorBody)
        }
      }
    } catch (error) {
      if (isShoalError(error)) throw error
      throw connectionError(error, this.url)
    } finally {
      response.destroy()
    }
    throw new ShoalError('DAEMON_UNREACHABLE', 'the daemon ended the fetch without a result')
  }

  async swarmLedger(): Promise<LedgerEntry[]> {
    return (await this.#json<{ peers: LedgerEntry[] }>('GET', 'swarm/ledger')).peers
  }

  async close(): Promise<void> {}

  async #json<T>(method: string, route: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.#request(method, route, options)
    return JSON.parse(Buffer.concat(await Array.fromAsync(response)).toString('utf8')) as T
  }

  /** Sends a request and returns the response once its status is 2xx; an error body becomes the error thrown. */
  #request(method: string, route: string, options: RequestOptions): Promise<IncomingMessage> {
    const url = new URL(`${this.url}${API_PREFIX}/${route}`)
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value))
    }
    return new Promise<IncomingMessage>((resolve, reject) => {
      const headers: Record<string, string> = {}
      if (options.contentType !== undefined) headers['content-type'] = options.contentType
      const request = httpRequest(url, { method, headers, signal: options.signal }, (response) => {
        if ((response.statusCode ?? 500) < 300) return resolve(response)
        Array.fromAsync(response).then((chunks) => {
          const text = Buffer.concat(chunks).toString('utf8')
          let body: ErrorBody
          try {
            body = (JSON.parse(text) as { error: ErrorBody }).error
          } catch {
            body = { code: 'INTERNAL', message: `HTTP ${response.statusCode}: ${text.slice(0, 200)}` }
          }
          reject(errorFromBody(body))
        }, reject)
      })
      request.on('error', (error) => reject(connectionError(error, this.url)))
      if (options.body === undefined) {
        request.end()
      } else {
        Readable.from(options.body, { highWaterMark: 1 }).on('error', (error) => request.destroy(error)).pipe(request)
      }
    })
  }
}

/** A subscription over the daemon's event stream: ends when closed, when the signal aborts, or with the daemon's `error` event. */
class EventStreamSubscription implements PubSubSubscription {
  readonly topic: string
  readonly #response: IncomingMessage
  readonly #closed: AbortController
  /** Ours to clear when the subscription ends, so that a long-lived caller's signal keeps nothing of it. */
  readonly #signal: ClearableSignal
  readonly #url: string
  #droppedCount = 0
  #iterating = false

  constructor(topic: string, response: IncomingMessage, closed: AbortController, signal: ClearableSignal, url: string) {
    this.topic = topic
    this.#response = response
    this.#closed = closed
    this.#signal = signal
    this.#url = url
  }

  get droppedCount(): number {
    return this.#droppedCount
  }

  close(): void {
    this.#closed.abort()
    this.#signal.clear()
    this.#response.destroy()
  }

  [Symbol.asyncIterator](): AsyncIterator<PubSubMessage> {
    if (this.#iterating) throw new Error('a subscription is iterated once')
    this.#iterating = true
    return this.#messages()
  }

  async *#messages(): AsyncGenerator<PubSubMessage> {
    const parser = new EventStreamParser()
    try {
      for await (const chunk of this.#response as AsyncIterable<Buffer>) {
        for (const { event, data } of parser.push(chunk)) {
          if (event === 'message') yield pubsubMessageFromJson(JSON.parse(data) as PubSubMessageJson)
          else if (event === PUBSUB_EVENT_DROPPED) this.#droppedCount = (JSON.parse(data) as { droppedCount: number }).droppedCount
          else if (event === PUBSUB_EVENT_ERROR) throw errorFromBody(JSON.parse(data) as ErrorBody)
        }
      }
    } catch (error) {
      if (this.#signal.aborted) return
      throw connectionError(error, this.#url)
    } finally {
      this.#signal.clear()
      this.#response.destroy()
    }
    if (this.#signal.aborted) return
    throw new ShoalError('DAEMON_UNREACHABLE', 'the daemon ended the subscription')
  }
}

function connectionError(error: unknown, url: string): unknown {
  const code = systemErrorCode(error)
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE') {
    return new ShoalError('DAEMON_UNREACHABLE', `the daemon at ${url} is not answering (${code})`, { cause: error })
  }
  if ((error as { name?: string }).name === 'AbortError') return new ShoalError('ABORTED', 'request aborted', { cause: error })
  return error
}

/** multipart/form-data, one part per candidate; a part's filename is its URI-encoded path. */
async function* multipartBody(candidates: AsyncIterable<AddCandidate>, boundary: string): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder()
  for await (const candidate of candidates) {
    const type = candidate.kind === 'directory' ? PART_TYPE_DIRECTORY : candidate.kind === 'symlink' ? PART_TYPE_SYMLINK : 'application/octet-stream'
    yield encoder.encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${encodeURIComponent(candidate.path)}"\r\nContent-Type: ${type}\r\n\r\n`,
    )
    if (candidate.kind === 'symlink') yield encoder.encode(candidate.target)
    if (candidate.kind === 'file') yield* candidate.content
    yield encoder.encode('\r\n')
  }
  yield encoder.encode(`--${boundary}--\r\n`)
}
