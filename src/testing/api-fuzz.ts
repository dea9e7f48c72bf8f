/**
 * Fuzzes the HTTP API's parameters: seeded requests to every route of a running API server
 * (an offline node behind it, so network routes answer OFFLINE), each query parameter left
 * out, valid, changed, random, very long or given twice, with a random body where the route
 * reads one. Every answer must be a success or a JSON error with a Shoal error code; a 500
 * (an error nobody named) or a request that hangs is a defect.
 */
import { startApiServer } from '../api/http-server.ts'
import { CID_PROFILES } from '../core/content/cid-profile.ts'
import { Prng } from '../core/prng.ts'
import type { AddCandidate } from '../node/api.ts'
import { initRepo } from '../node/repo.ts'
import { ShoalNode } from '../node/shoal-node.ts'
import { peerIds } from './wire-arbitraries.ts'

type ParamKind = 'path' | 'integer' | 'boolean' | 'profile' | 'peer' | 'record-key' | 'topic' | 'order'

interface Route {
  method: 'GET' | 'POST'
  path: string
  params: Record<string, ParamKind>
  /** Sends a random application/octet-stream body. */
  body?: boolean
}

/** Every route but the event stream of pubsub/sub (it stays open) and repo/gc (it would remove the samples). */
const ROUTES: readonly Route[] = [
  { method: 'GET', path: 'id', params: {} },
  { method: 'POST', path: 'add', params: { 'cid-profile': 'profile', pin: 'boolean' }, body: true },
  { method: 'GET', path: 'cat', params: { arg: 'path', offset: 'integer', length: 'integer' } },
  { method: 'GET', path: 'stat', params: { arg: 'path' } },
  { method: 'GET', path: 'ls', params: { arg: 'path' } },
  { method: 'POST', path: 'pin/add', params: { arg: 'path', recursive: 'boolean' } },
  { method: 'POST', path: 'pin/rm', params: { arg: 'path' } },
  { method: 'GET', path: 'pin/ls', params: {} },
  { method: 'GET', path: 'repo/stat', params: {} },
  { method: 'GET', path: 'peers', params: {} },
  { method: 'POST', path: 'swarm/connect', params: { arg: 'peer', 'wait-direct-ms': 'integer' } },
  { method: 'POST', path: 'swarm/disconnect', params: { arg: 'peer' } },
  { method: 'GET', path: 'stats', params: {} },
  { method: 'GET', path: 'dht/find-peer', params: { arg: 'peer' } },
  { method: 'GET', path: 'dht/find-providers', params: { arg: 'path', max: 'integer' } },
  { method: 'POST', path: 'dht/provide', params: { arg: 'path' } },
  { method: 'GET', path: 'dht/get', params: { arg: 'record-key' } },
  { method: 'POST', path: 'dht/put', params: { arg: 'record-key' }, body: true },
  { method: 'GET', path: 'dht/table', params: {} },
  { method: 'POST', path: 'pubsub/pub', params: { arg: 'topic' }, body: true },
  { method: 'GET', path: 'pubsub/ls', params: {} },
  { method: 'GET', path: 'pubsub/peers', params: { arg: 'topic' } },
  { method: 'POST', path: 'fetch', params: { arg: 'path', order: 'order', pin: 'boolean' } },
  { method: 'GET', path: 'swarm/ledger', params: {} },
]

export interface ApiFuzzSamples {
  /** CIDs and paths in the node's repo. */
  paths: string[]
  peers: string[]
}

export interface ApiFuzzReport {
  requests: number
  /** Answers by status. */
  statuses: Record<number, number>
  /** Error answers by Shoal error code. */
  codes: Record<string, number>
  defects: string[]
  seconds: number
}

const REQUEST_TIMEOUT_MS = 10_000
const DEFECTS_KEPT = 20

export async function fuzzApi(apiUrl: string, samples: ApiFuzzSamples, requests: number, seed: string): Promise<ApiFuzzReport> {
  const prng = Prng.fromSeed(`${seed}/api`)
  const report: ApiFuzzReport = { requests: 0, statuses: {}, codes: {}, defects: [], seconds: 0 }
  const startedMs = performance.now()
  for (let index = 0; index < requests; index++) {
    const route = ROUTES[index % ROUTES.length]!
    const query = new URLSearchParams()
    for (const [name, kind] of Object.entries(route.params)) {
      for (const value of paramValues(prng, kind, samples)) query.append(name, value)
    }
    const url = `${apiUrl}/api/v0/${route.path}?${query}`
    const body = route.body === true ? randomBytes(prng, prng.int(2_048)) : undefined
    const defect = await send(route.method, url, body, report)
    report.requests++
    if (defect !== undefined && report.defects.length < DEFECTS_KEPT) report.defects.push(`${route.method} ${url.slice(0, 300)}: ${defect}`)
  }
  report.seconds = (performance.now() - startedMs) / 1_000
  return report
}

async function send(method: string, url: string, body: Uint8Array | undefined, report: ApiFuzzReport): Promise<string | undefined> {
  let response: Response
  let text: string
  try {
    response = await fetch(url, {
      method,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/octet-stream' } }),
    })
    text = await response.text()
  } catch (error) {
    return `no answer: ${(error as Error).message}`
  }
  report.statuses[response.status] = (report.statuses[response.status] ?? 0) + 1
  if (response.status < 400) return undefined
  let code: unknown
  try {
    code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code
  } catch {
    return `status ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`
  }
  if (typeof code !== 'string') return `status ${response.status} without an error code: ${text.slice(0, 200)}`
  report.codes[code] = (report.codes[code] ?? 0) + 1
  if (response.status === 500 || code === 'INTERNAL') return `status ${response.status}, ${code}: ${text.slice(0, 200)}`
  return undefined
}

/** None, one or (rarely) two values: valid, changed, random, or very long. */
function paramValues(prng: Prng, kind: ParamKind, samples: ApiFuzzSamples): string[] {
  const draw = prng.int(10)
  if (draw === 0) return []
  const one = (): string => {
    const valid = validValue(prng, kind, samples)
    switch (prng.int(5)) {
      case 0: case 1: return valid
      case 2: return mutate(prng, valid)
      case 3: return randomText(prng, prng.int(64))
      default: return prng.bernoulli(0.5) ? valid.repeat(1 + prng.int(400)) : randomText(prng, 2_000 + prng.int(8_000))
    }
  }
  return draw === 1 ? [one(), one()] : [one()]
}

function validValue(prng: Prng, kind: ParamKind, samples: ApiFuzzSamples): string {
  const pick = <T>(values: readonly T[]): T => values[prng.int(values.length)]!
  switch (kind) {
    case 'path': return pick(samples.paths)
    case 'integer': return String(pick([0, 1, 7, 100, 4_096, 2 ** 31, Number.MAX_SAFE_INTEGER]))
    case 'boolean': return pick(['true', 'false'])
    case 'profile': return pick(CID_PROFILES)
    case 'peer': return pick(samples.peers)
    case 'record-key': return `/${pick(['ipns', 'pk'])}/${pick(samples.peers)}`
    case 'topic': return pick(['news', 'shoal/test', '', 'é'])
    case 'order': return pick(['rarest', 'in-order'])
  }
}

function mutate(prng: Prng, text: string): string {
  let chars = [...text]
  for (let changes = 1 + prng.int(3); changes > 0; changes--) {
    const at = prng.int(chars.length + 1)
    const operation = prng.int(3)
    if (operation === 0 && at < chars.length) chars[at] = randomText(prng, 1)
    else if (operation === 1) chars = [...chars.slice(0, at), randomText(prng, 1), ...chars.slice(at)]
    else chars = [...chars.slice(0, at), ...chars.slice(at + 1)]
  }
  return chars.join('')
}

/** Any code points but lone surrogates: mostly ASCII (punctuation included), some beyond. */
function randomText(prng: Prng, length: number): string {
  let text = ''
  for (let index = 0; index < length; index++) {
    const codePoint = prng.bernoulli(0.8) ? 0x20 + prng.int(0x5f) : prng.bernoulli(0.5) ? prng.int(0x20) : 0xa0 + prng.int(0xd7ff - 0xa0)
    text += String.fromCodePoint(codePoint)
  }
  return text
}

function randomBytes(prng: Prng, length: number): Uint8Array {
  const bytes = new Uint8Array(length)
  for (let index = 0; index < length; index++) bytes[index] = prng.int(256)
  return bytes
}

/** An offline node in `repoDir` behind an API server on loopback, with content to name. */
export async function apiFuzzDaemon(repoDir: string): Promise<{ url: string; samples: ApiFuzzSamples; close: () => Promise<void> }> {
  await initRepo(repoDir)
  const node = await ShoalNode.open(repoDir)
  const server = await startApiServer(node, { host: '127.0.0.1', port: 0 })
  const file = (path: string, text: string): AddCandidate => ({ kind: 'file', path, content: (async function* () { yield new TextEncoder().encode(text) })() })
  const [directory] = await node.add((async function* (): AsyncIterable<AddCandidate> {
    yield { kind: 'directory', path: 'site' }
    yield file('site/a.txt', 'a')
    yield file('site/b.txt', 'b'.repeat(5_000))
  })())
  const root = directory!.cid
  return {
    url: server.url,
    samples: { paths: [root, `${root}/a.txt`, `/ipfs/${root}/b.txt`, `${root}/missing`], peers: [...peerIds] },
    close: async () => {
      await server.close()
      await node.close()
    },
  }
}
