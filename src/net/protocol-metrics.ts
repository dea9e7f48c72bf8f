/**
 * What a ProtocolDriver reports, as an interface the node implements once (Prometheus, in
 * api/) and tests implement in memory (CountingProtocolMetrics, here).
 *
 * Every method maps to one prom-client metric labelled by `protocol` and, where there is
 * one, `reason` or `direction`; the labels come from small fixed sets (the driver's reason
 * constants below, the codec's WireError codes, the core's disconnect reasons), never from
 * peer input, so label cardinality stays bounded.
 */
import type { Direction } from '../core/sans-io.ts'

export interface ProtocolMetrics {
  /**
   * A frame went onto a stream; `bytes` includes the length prefix. Counter pair: frames,
   * bytes; `relayed` (through a circuit relay) counts the bytes a second time, apart.
   */
  frameSent(protocol: string, bytes: number, relayed: boolean): void
  /** A frame was read and decoded; `bytes` is its body. As frameSent. */
  frameReceived(protocol: string, bytes: number, relayed: boolean): void
  /** The driver's stream to a peer left a relayed connection for a direct one. Counter. */
  streamMoved(protocol: string): void
  /**
   * A remote did something we refuse and its stream was aborted or closed (or its peer hung
   * up): a frame reason (FRAME_TOO_LARGE, BAD_LENGTH_PREFIX), a codec WireError code, or one
   * of RejectReason. Counter.
   */
  rejected(protocol: string, reason: string): void
  /** One outbound frame not sent, see DropReason. Counter. */
  dropped(protocol: string, reason: DropReason): void
  /** Streams held by the driver: a gauge that goes up here... */
  streamOpened(protocol: string, direction: Direction): void
  /** ...and down here. */
  streamClosed(protocol: string, direction: Direction): void
  /**
   * A dial the core asked for did not give it a peer that speaks the protocol, or a dial for a
   * request did not give it a connection, see DialFailure. Counter.
   */
  dialFailed(protocol: string, reason: DialFailure): void
  /** A peer was hung up: the core's reason (e.g. ping-timeout) or the driver's (stream-churn, request-flood). Counter. */
  disconnected(protocol: string, reason: string): void
  /**
   * An outbound request ended in `request-failed` rather than `response`: a RequestFailure,
   * or, for a bad response, its frame reason or codec WireError code. Counter.
   */
  requestFailed(protocol: string, reason: string): void
}

/** Why the driver refused something a remote did (besides frame and codec errors). */
export type RejectReason =
  /** A newer inbound stream from the same peer replaced this one. */
  | 'stream-replaced'
  /** The peer opened more inbound streams than allowed in the window; it was hung up. */
  | 'stream-churn'
  /** The remote wrote on a stream we opened; our streams carry one direction only. */
  | 'unexpected-data'
  /** The codec threw instead of returning a WireError: a codec bug, refused like bad input. */
  | 'decoder-threw'
  /** Requests style: the peer already had inboundRequestStreamsPerPeerMax streams open; the new one was reset. */
  | 'too-many-streams'
  /** Requests style: a request past the peer's token bucket; its stream was reset unanswered. */
  | 'request-rate'
  /** Requests style: an inbound stream idle for requestTimeoutMs was closed. */
  | 'stream-idle'

export type DropReason =
  /** The peer's outbound queue had no room (it reads slower than we write). */
  | 'send-queue-full'
  /** The core asked to send more than codec.frameBytesMax: a bug in the core. */
  | 'frame-too-large'
  /** No open connection to the peer: sends never dial. */
  | 'not-connected'
  /** Opening the outbound stream failed; frames queued behind it went too. */
  | 'stream-open-failed'
  /** The outbound stream closed or failed with frames still queued. */
  | 'stream-closed'
  /** The driver stopped with frames still queued, or the core sent after stop(). */
  | 'stopped'
  /**
   * Requests style: a `respond` to a request the driver no longer holds: its stream closed,
   * or it was the oldest of too many unanswered on its stream.
   */
  | 'request-unknown'

export type DialFailure =
  | 'bad-peer-id'
  | 'self'
  | 'no-addresses'
  | 'too-many-dials'
  | 'timeout'
  | 'unreachable'
  /** Connected, but identify says the peer does not speak the protocol. */
  | 'protocol-unsupported'
  /** Connected, but identify did not tell in time whether it speaks the protocol. */
  | 'identify-timeout'
  | 'stopped'

/** Why an outbound request got `request-failed` (a bad response is reported by its wire code instead). */
export type RequestFailure =
  /** requestsInFlightMax requests (or their closing streams) are held already. */
  | 'too-many-requests'
  /** The core's message encodes to more than codec.frameBytesMax: a bug in the core. */
  | 'request-too-large'
  | 'bad-peer-id'
  | 'self'
  /** Not connected, and a dial for it would pass dialsInFlightMax. */
  | 'too-many-dials'
  /** Not connected, and the dial failed: unreachable, no usable address, or dialTimeoutMs passed. */
  | 'dial-failed'
  /** Connected, but the peer refused the protocol (it does not speak it, or does not serve it now). */
  | 'protocol-unsupported'
  /** Negotiating the stream failed otherwise, e.g. the connection closed or is limited (relayed). */
  | 'stream-open-failed'
  /** The stream was closed or reset, or the remote finished writing, before a response. */
  | 'stream-closed'
  /** requestTimeoutMs passed since the request. */
  | 'timeout'
  /** The driver stopped: counted, but never delivered, as the core gets no input after stop(). */
  | 'stopped'

/** In-memory ProtocolMetrics for tests: counts by `name` and `name/label`, across protocols. */
export class CountingProtocolMetrics implements ProtocolMetrics {
  readonly #counts = new Map<string, number>()

  /** e.g. count('rejected', 'frame-too-large'), count('framesSent'), count('streamsOpen', 'inbound'). */
  count(name: string, label?: string): number {
    return this.#counts.get(label === undefined ? name : `${name}/${label}`) ?? 0
  }

  /** Every non-zero count, for assertion messages. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counts].filter(([, value]) => value !== 0).sort(([a], [b]) => a.localeCompare(b)))
  }

  frameSent(_protocol: string, bytes: number, relayed: boolean): void {
    this.#add('framesSent', undefined, 1)
    this.#add('bytesSent', relayed ? 'relayed' : undefined, bytes)
  }

  frameReceived(_protocol: string, bytes: number, relayed: boolean): void {
    this.#add('framesReceived', undefined, 1)
    this.#add('bytesReceived', relayed ? 'relayed' : undefined, bytes)
  }

  streamMoved(): void {
    this.#add('streamsMoved', undefined, 1)
  }

  rejected(_protocol: string, reason: string): void {
    this.#add('rejected', reason, 1)
  }

  dropped(_protocol: string, reason: DropReason): void {
    this.#add('dropped', reason, 1)
  }

  streamOpened(_protocol: string, direction: Direction): void {
    this.#add('streamsOpened', direction, 1)
    this.#add('streamsOpen', direction, 1)
  }

  streamClosed(_protocol: string, direction: Direction): void {
    this.#add('streamsOpen', direction, -1)
  }

  dialFailed(_protocol: string, reason: DialFailure): void {
    this.#add('dialFailed', reason, 1)
  }

  disconnected(_protocol: string, reason: string): void {
    this.#add('disconnected', reason, 1)
  }

  requestFailed(_protocol: string, reason: string): void {
    this.#add('requestFailed', reason, 1)
  }

  #add(name: string, label: string | undefined, amount: number): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + amount)
    if (label !== undefined) this.#counts.set(`${name}/${label}`, (this.#counts.get(`${name}/${label}`) ?? 0) + amount)
  }
}
