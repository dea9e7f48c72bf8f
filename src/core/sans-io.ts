/**
 * The sans-IO contract every protocol core follows (see ARCHITECTURE.md). A core owns
 * no sockets, timers, clock or randomness: time arrives as `now`, randomness from an
 * injected Prng, and effects leave as actions. The two drivers, net/ (libp2p streams)
 * and sim/ (the discrete-event simulator), run the same loop:
 *
 *   core.handle(now, input)
 *   for (let action = core.poll(); action; action = core.poll()) execute(action)
 *   schedule(core.nextDeadline())
 */

/** Milliseconds on the driver's clock: wall time in net/, virtual time in sim/. */
export type Millis = number

/** A peer's id as text: a libp2p PeerId string in net/, a synthetic name in sim/. */
export type PeerId = string & { readonly __brand: 'PeerId' }

export function asPeerId(text: string): PeerId {
  return text as PeerId
}

export interface Core<Input, Action> {
  handle(now: Millis, input: Input): void
  /** Drained by the driver after every handle() until it returns undefined. */
  poll(): Action | undefined
  /** When the driver must deliver a tick; a tick before it does nothing. */
  nextDeadline(): Millis | undefined
}

export type Direction = 'inbound' | 'outbound'

/**
 * What a driver tells a core about the network. `peer-connected` means a connection is
 * open to a peer that speaks the core's protocol; `addresses` are multiaddr strings
 * (empty in simulation, where peers are dialled by id).
 */
export type NetworkInput<Message> =
  /**
   * `protocol`: the protocol id the peer was found to speak, when the codec offers
   * fallbackProtocols (the newest both speak); absent otherwise, and in simulation.
   */
  | { type: 'peer-connected'; peer: PeerId; direction: Direction; addresses: readonly string[]; protocol?: string }
  | { type: 'peer-disconnected'; peer: PeerId }
  | { type: 'message'; from: PeerId; message: Message }
  | { type: 'dial-failed'; peer: PeerId; reason: string }
  /** A peer learnt from outside the protocol: bootstrap, mDNS, identify, the DHT. */
  | { type: 'peer-discovered'; peer: PeerId; addresses: readonly string[]; source: DiscoverySource }
  | { type: 'tick' }

export type DiscoverySource = 'bootstrap' | 'mdns' | 'identify' | 'dht' | 'cache' | 'exchange'

/** What a core asks a driver to do on the network. */
export type NetworkAction<Message> =
  | { type: 'send'; to: PeerId; message: Message }
  | { type: 'dial'; peer: PeerId; addresses: readonly string[] }
  | { type: 'disconnect'; peer: PeerId; reason: string }

/**
 * Request/response protocols (the DHT): every request travels on a stream of its own and
 * its response comes back on the same stream, as the libp2p kad-dht spec requires. The
 * driver dials when needed, numbers inbound requests, and reports each outbound request's
 * end at most once: `response` (with the reply, or no message for a one-way request once
 * it was written) or `request-failed`. A request whose remote vanishes (a crash, a lost
 * route) may never be reported, so timing a request out is the core's business (it owns
 * its deadlines); the driver only bounds how long a stream may live.
 *
 * Ids: an outbound request's id is the core's own; an inbound request's id is the
 * driver's, unique per remote peer but not across peers, so `respond` names the peer
 * (`to`) as well as the id.
 */
export type RequestId = number

export type RequestInput<Message> =
  /**
   * A remote's request: answer with `respond` (same id) or not at all. `remoteIsServer`: the
   * remote says (by identify) that it serves the protocol, and `addresses` are those it was
   * reported connected with; a client's are those identify gave (empty in simulation). A
   * client that made a request is reported `peer-disconnected` when it disconnects, as a
   * connected server is.
   */
  | { type: 'request'; from: PeerId; id: RequestId; message: Message; addresses: readonly string[]; remoteIsServer: boolean }
  | { type: 'response'; from: PeerId; id: RequestId; message: Message | undefined }
  | { type: 'request-failed'; peer: PeerId; id: RequestId; reason: string }
  /** A client that made a request identified itself anew (identify-push): its addresses now. */
  | { type: 'client-identified'; peer: PeerId; addresses: readonly string[] }

export type RequestAction<Message> =
  /** `oneWay`: no reply is awaited; `response` without a message reports it written. */
  | { type: 'request'; to: PeerId; addresses: readonly string[]; id: RequestId; message: Message; oneWay: boolean }
  | { type: 'respond'; to: PeerId; id: RequestId; message: Message }

/**
 * How one protocol's messages cross the wire: both drivers use it, net/ to frame
 * streams and sim/ to account each message's size.
 */
export interface WireCodec<Message> {
  /** libp2p protocol id, e.g. /shoal/membership/1.0.0 */
  readonly protocol: string
  /**
   * Older ids of the same protocol, newest first, also spoken with this codec (e.g.
   * /meshsub/1.1.0 and /meshsub/1.0.0 after /meshsub/1.2.0); the core learns which one a
   * peer speaks from `peer-connected`.
   */
  readonly fallbackProtocols?: readonly string[]
  /** Largest frame accepted or sent, in bytes; a larger one is a decode error. */
  readonly frameBytesMax: number
  encode(message: Message): Uint8Array
  /**
   * Optional: encode(message) as parts written one after the other, for messages with a
   * large payload (a swarm block), which then reaches the stream without being copied.
   */
  encodeParts?(message: Message): readonly Uint8Array[]
  decode(bytes: Uint8Array): DecodeResult<Message>
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: WireError }

/** Why a frame was rejected: `code` is a short stable label counted in metrics. */
export interface WireError {
  code: string
  detail?: string
}

export function wireError(code: string, detail?: string): { ok: false; error: WireError } {
  return detail === undefined ? { ok: false, error: { code } } : { ok: false, error: { code, detail } }
}
