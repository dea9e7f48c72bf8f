/**
 * Hostile peers for the flood runs (floods.ts), and the well-behaved peer's latency probe.
 * Each runs in a process of its own (flooder-process.ts), so that the daemon under attack
 * competes with them as with any other process on the machine. Every loop stops by itself
 * after `seconds` or its count bound.
 *
 *   connections  raw TCP connections to the daemon's listener at a set rate, from a set of
 *                loopback source addresses; by turns each is hung up at once, sent a junk
 *                handshake, or held idle (up to heldMax at a time).
 *   streams      a libp2p peer opens streams on Shoal's protocols as fast as they negotiate
 *                and holds them; when the daemon hangs up, it comes back with a new identity.
 *   frames       a libp2p peer writes frames of each protocol's maximum size (random bytes
 *                behind a valid length prefix) as fast as its streams take them; a stream
 *                the daemon drops is opened again, a hung-up peer comes back as another.
 *   http         `concurrency` requests in flight to the daemon's API at all times.
 *   ping         libp2p pings to the daemon every intervalMs: the well-behaved peer's latency.
 *   newcomers    every intervalMs a peer of a fresh identity dials the daemon, pings it once
 *                and hangs up: whether a peer new to the daemon gets in during a flood.
 */
import { connect, type Socket } from 'node:net'
import { request as httpRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { encode as varintEncode } from 'uint8-varint'
import { pseudoRandomBytes } from './temp.ts'

export interface ConnectionFlood {
  kind: 'connections'
  host: string
  port: number
  perSecond: number
  seconds: number
  sourceAddresses: readonly string[]
  heldMax: number
}

export interface StreamFlood {
  kind: 'streams'
  target: string
  seconds: number
  sourceAddress: string
  protocols: readonly string[]
  streamsMax: number
}

export interface FrameFlood {
  kind: 'frames'
  target: string
  seconds: number
  sourceAddress: string
  protocols: ReadonlyArray<{ protocol: string; frameBytesMax: number }>
}

export interface HttpFlood {
  kind: 'http'
  api: string
  seconds: number
  concurrency: number
  /** Paths under the API, taken in turn. */
  paths: readonly string[]
}

/** ping: one peer pings every intervalMs; newcomers: a peer of a fresh identity each time. */
export interface Probe {
  kind: 'ping' | 'newcomers'
  target: string
  seconds: number
  intervalMs: number
  sourceAddress: string
}

export type FloodPlan = ConnectionFlood | StreamFlood | FrameFlood | HttpFlood | Probe

/** What a flooder did, and what came back: counts by outcome. */
export interface FloodOutcome {
  kind: FloodPlan['kind']
  seconds: number
  /** Connection attempts, streams opened, frames written, requests sent, pings sent or newcomers' dials. */
  attempts: number
  outcomes: Record<string, number>
  /** ping: round-trip times in ms; http: response times in ms; newcomers: dial and ping, in ms. */
  latenciesMs?: number[]
}

export async function runFlood(plan: FloodPlan): Promise<FloodOutcome> {
  switch (plan.kind) {
    case 'connections': return floodConnections(plan)
    case 'streams': return floodStreams(plan)
    case 'frames': return floodFrames(plan)
    case 'http': return floodHttp(plan)
    case 'ping': return probePing(plan)
    case 'newcomers': return probeNewcomers(plan)
  }
}

/** What went wrong, by name: libp2p rejects some promises with things that are not Errors. */
function nameOf(error: unknown): string {
  if (error instanceof Error) return error.name
  return typeof error === 'object' && error !== null && 'type' in error ? `event ${String(error.type)}` : typeof error
}

/** A probe's failure by its name and message, addresses and numbers masked, so that alike failures tally together. */
function failureOf(error: unknown): string {
  const message = error instanceof Error ? error.message.replace(/[\d.:]*\d/g, 'N').slice(0, 80) : ''
  return message === '' ? nameOf(error) : `${nameOf(error)} (${message})`
}

class Tally {
  readonly outcomes: Record<string, number> = {}
  add(outcome: string, count = 1): void {
    this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + count
  }
}

/** The start of a libp2p handshake on TCP: multistream-select's header and a Noise proposal. */
const HANDSHAKE_START = Buffer.concat(['/multistream/1.0.0\n', '/noise\n'].map((line) => Buffer.concat([varintEncode(line.length), Buffer.from(line)])))

async function floodConnections(plan: ConnectionFlood): Promise<FloodOutcome> {
  const tally = new Tally()
  const sockets = new Set<Socket>()
  let held = 0
  let attempts = 0
  const junk = Buffer.concat([HANDSHAKE_START, Buffer.from([0, 32]), pseudoRandomBytes(32)])
  const startedMs = performance.now()
  const endMs = startedMs + plan.seconds * 1_000
  const attempt = (index: number): void => {
    const socket = connect({ host: plan.host, port: plan.port, localAddress: plan.sourceAddresses[index % plan.sourceAddresses.length]! })
    sockets.add(socket)
    let ours = false
    let holding = false
    socket.on('connect', () => {
      tally.add('connected')
      const behaviour = index % 3
      if (behaviour === 0) {
        ours = true
        socket.destroy()
      } else if (behaviour === 1 || held >= plan.heldMax) {
        socket.write(junk)
      } else {
        holding = true
        held++
      }
    })
    socket.on('error', (error: NodeJS.ErrnoException) => tally.add(`error ${error.code ?? error.name}`))
    socket.on('close', () => {
      sockets.delete(socket)
      if (holding) held--
      if (!ours) tally.add(holding ? 'held until the daemon hung up' : 'hung up by the daemon')
    })
  }
  while (performance.now() < endMs) {
    const due = Math.floor(((performance.now() - startedMs) / 1_000) * plan.perSecond)
    // Catching up after a stall is bounded, so that the rate never bursts past 10 × the plan's.
    for (let count = 0; attempts < due && count < plan.perSecond / 10; count++) attempt(attempts++)
    await sleep(10)
  }
  const seconds = (performance.now() - startedMs) / 1_000
  for (const socket of sockets) {
    socket.removeAllListeners('close')
    socket.destroy()
  }
  tally.add('still open at the end', sockets.size)
  return { kind: 'connections', seconds, attempts, outcomes: tally.outcomes }
}

/** A peer of a fresh identity dialling from `sourceAddress`, its limits out of its own way. */
async function peerFrom(sourceAddress: string): Promise<Libp2p<{ ping: Ping }>> {
  return createLibp2p({
    // The TCP transport hands dialOpts to net.connect, which takes the source address.
    transports: [tcp({ dialOpts: { localAddress: sourceAddress } as object })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxOutboundStreams: 1_000_000, maxInboundStreams: 1_000 })],
    services: { identify: identify(), ping: ping() },
    connectionManager: { maxConnections: 10 },
  })
}

/** Runs `work` on a connection from a fresh peer, again with another while time is left; resolves with the identities used. */
async function asSuccessivePeers(plan: { target: string; seconds: number; sourceAddress: string }, tally: Tally, work: (connection: Connection, endMs: number) => Promise<void>): Promise<number> {
  const endMs = performance.now() + plan.seconds * 1_000
  let identities = 0
  while (performance.now() < endMs) {
    const peer = await peerFrom(plan.sourceAddress)
    identities++
    try {
      const connection = await peer.dial(multiaddr(plan.target), { signal: AbortSignal.timeout(5_000) })
      await work(connection, endMs)
      if (connection.status !== 'open') tally.add('hung up by the daemon')
    } catch (error) {
      tally.add(`dial failed: ${nameOf(error)}`)
      await sleep(100)
    } finally {
      await peer.stop()
    }
  }
  return identities
}

async function floodStreams(plan: StreamFlood): Promise<FloodOutcome> {
  const tally = new Tally()
  let attempts = 0
  const startedMs = performance.now()
  const identities = await asSuccessivePeers(plan, tally, async (connection, endMs) => {
    const held: Stream[] = []
    // The connection's status can read 'open' a moment after its muxer closed.
    let muxerClosed = false
    while (connection.status === 'open' && !muxerClosed && performance.now() < endMs && attempts < plan.streamsMax) {
      const batch = plan.protocols.map((protocol) => {
        attempts++
        return connection.newStream(protocol, { maxOutboundStreams: 1_000_000, signal: AbortSignal.timeout(5_000) })
          .then((stream) => {
            tally.add('opened')
            held.push(stream)
          }, (error: unknown) => {
            tally.add(`refused: ${nameOf(error)}`)
            if (nameOf(error) === 'ConnectionClosedError') muxerClosed = true
          })
      })
      await Promise.all(batch)
    }
    tally.add('held when the peer left', held.filter((stream) => stream.status === 'open').length)
  })
  tally.add('identities', identities)
  return { kind: 'streams', seconds: (performance.now() - startedMs) / 1_000, attempts, outcomes: tally.outcomes }
}

async function floodFrames(plan: FrameFlood): Promise<FloodOutcome> {
  const tally = new Tally()
  let attempts = 0
  const startedMs = performance.now()
  const frames = plan.protocols.map(({ protocol, frameBytesMax }) => ({
    protocol,
    frame: Buffer.concat([varintEncode(frameBytesMax), pseudoRandomBytes(frameBytesMax)]),
  }))
  const identities = await asSuccessivePeers(plan, tally, async (connection, endMs) => {
    await Promise.all(frames.map(async ({ protocol, frame }) => {
      while (connection.status === 'open' && performance.now() < endMs) {
        let stream: Stream
        try {
          stream = await connection.newStream(protocol, { signal: AbortSignal.timeout(5_000) })
        } catch (error) {
          tally.add(`stream refused: ${nameOf(error)}`)
          // The connection's status can read 'open' a moment after its muxer closed.
          if (nameOf(error) === 'ConnectionClosedError') break
          continue
        }
        while (stream.writeStatus === 'writable' && performance.now() < endMs) {
          attempts++
          tally.add('frames written')
          tally.add('bytes written', frame.byteLength)
          if (stream.send(frame)) continue
          const outcome = await drained(stream, 5_000)
          if (outcome === 'drained') continue
          tally.add(outcome === 'stalled' ? 'stream stalled: the daemon stopped reading' : 'stream dropped by the daemon')
          break
        }
        stream.abort(new Error('flood over'))
      }
    }))
  })
  tally.add('identities', identities)
  return { kind: 'frames', seconds: (performance.now() - startedMs) / 1_000, attempts, outcomes: tally.outcomes }
}

/**
 * Waits for the stream's 'drain' event. Not stream.onDrain(): in this libp2p it resolved at
 * once with megabytes still buffered, which let a writer queue without bound.
 */
function drained(stream: Stream, msMax: number): Promise<'drained' | 'stalled' | 'closed'> {
  return new Promise((resolve) => {
    const done = (outcome: 'drained' | 'stalled' | 'closed'): void => {
      clearTimeout(timer)
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      resolve(outcome)
    }
    const onDrain = (): void => done('drained')
    const onClose = (): void => done('closed')
    const timer = setTimeout(() => done('stalled'), msMax)
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
  })
}

async function floodHttp(plan: HttpFlood): Promise<FloodOutcome> {
  const tally = new Tally()
  const latenciesMs: number[] = []
  let attempts = 0
  const startedMs = performance.now()
  const endMs = startedMs + plan.seconds * 1_000
  const requestOnce = (path: string): Promise<void> => new Promise((resolve) => {
    const sentMs = performance.now()
    // A connection each: 1,000 requests in flight are 1,000 sockets, as 1,000 clients would be.
    const request = httpRequest(`${plan.api}${path}`, { agent: false, signal: AbortSignal.timeout(30_000) }, (response) => {
      response.resume()
      response.on('end', () => {
        latenciesMs.push(performance.now() - sentMs)
        tally.add(`status ${response.statusCode}`)
        resolve()
      })
      response.on('error', (error) => {
        tally.add(`response error ${error.name}`)
        resolve()
      })
    })
    request.on('error', (error: NodeJS.ErrnoException) => {
      tally.add(`request error ${error.code ?? error.name}`)
      resolve()
    })
    request.end()
  })
  await Promise.all(Array.from({ length: plan.concurrency }, async (_, lane) => {
    for (let turn = lane; performance.now() < endMs; turn += plan.concurrency) {
      attempts++
      await requestOnce(plan.paths[turn % plan.paths.length]!)
    }
  }))
  return { kind: 'http', seconds: (performance.now() - startedMs) / 1_000, attempts, outcomes: tally.outcomes, latenciesMs }
}

/** Calls `attempt` every plan.intervalMs for plan.seconds, one at a time; each resolves with its latency in ms. */
async function paceProbe(plan: Probe, attempt: () => Promise<number>): Promise<FloodOutcome> {
  const tally = new Tally()
  const latenciesMs: number[] = []
  let attempts = 0
  const startedMs = performance.now()
  for (let nextMs = startedMs; nextMs < startedMs + plan.seconds * 1_000; nextMs += plan.intervalMs) {
    await sleep(Math.max(0, nextMs - performance.now()))
    attempts++
    try {
      latenciesMs.push(await attempt())
      tally.add('answered')
    } catch (error) {
      tally.add(`failed: ${failureOf(error)}`)
    }
  }
  return { kind: plan.kind, seconds: (performance.now() - startedMs) / 1_000, attempts, outcomes: tally.outcomes, latenciesMs }
}

async function probePing(plan: Probe): Promise<FloodOutcome> {
  const peer = await peerFrom(plan.sourceAddress)
  try {
    return await paceProbe(plan, () => peer.services.ping.ping(multiaddr(plan.target), { signal: AbortSignal.timeout(5_000) }))
  } finally {
    await peer.stop()
  }
}

async function probeNewcomers(plan: Probe): Promise<FloodOutcome> {
  return paceProbe(plan, async () => {
    const peer = await peerFrom(plan.sourceAddress)
    try {
      const dialedMs = performance.now()
      // The ping dials: a new connection, with its own handshake.
      await peer.services.ping.ping(multiaddr(plan.target), { signal: AbortSignal.timeout(5_000) })
      return performance.now() - dialedMs
    } finally {
      await peer.stop()
    }
  })
}
