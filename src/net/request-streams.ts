/**
 * RequestStreams: the request/response half of ProtocolDriver (style 'requests', e.g. the
 * DHT), after the libp2p kad-dht spec: every outbound request opens a stream of its own
 * (offering the codec's ids, newest first) and reads its one response there; an inbound stream
 * may carry several requests in turn, each answered on that stream. It owns:
 *   - outbound requests, each ended exactly once with `response` or `request-failed`, and held
 *     (counted against requestsInFlightMax) until its stream has closed, which is at most
 *     requestTimeoutMs after the request;
 *   - inbound request streams: per-peer admission (open streams bounded, requests metered by
 *     a token bucket), the requests not yet answered on each stream, and an idle bound.
 *
 * Driven by ProtocolDriver, which runs the loop, the topology and the dials: it hands over the
 * core's `request` and `respond` actions and the remotes' streams, and takes inputs back
 * through `deliver`. Nothing that arrives from the wire throws: every failure is counted in
 * ProtocolMetrics.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { anySignal, type ClearableSignal } from 'any-signal'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { Millis, PeerId, RequestAction, RequestId, RequestInput, WireCodec } from '../core/sans-io.ts'
import { encodeFrame, FrameReader } from './frames.ts'
import type { ProtocolDriverLimits } from './protocol-driver.ts'
import type { DialFailure, ProtocolMetrics, RequestFailure } from './protocol-metrics.ts'
import { closeStream, decodeFrame, protocolIdsOf } from './streams.ts'

/** What RequestStreams needs from the driver that runs it. */
export interface RequestStreamsContext<Message> {
  codec: WireCodec<Message>
  metrics: ProtocolMetrics
  limits: ProtocolDriverLimits
  now: () => Millis
  /** Aborted when the driver stops. */
  stopSignal: AbortSignal
  deliver: (input: RequestInput<Message>) => void
  /** An open connection to the peer, or the outcome of a dial for it (bounded and counted by the driver). */
  connect: (peer: PeerId, addresses: readonly string[]) => Promise<Connection | DialFailure>
  /**
   * Who a request came from: a server (identify says it speaks the protocol) with the
   * addresses it was reported with, or a client with those identify gave.
   */
  requester: (peer: PeerId) => { addresses: readonly string[]; server: boolean }
  /** Hangs the peer up, counted under `reason`. */
  disconnect: (peer: PeerId, reason: string) => void
}

export type RequestToSend<Message> = Extract<RequestAction<Message>, { type: 'request' }>
export type Response<Message> = Extract<RequestAction<Message>, { type: 'respond' }>

/** Admission records are swept of peers that are as good as new when this many have one. */
const ADMISSION_PEERS_SWEEP_COUNT = 1_024

interface OutboundRequest {
  peer: PeerId
  id: RequestId
  /** Aborts requestTimeoutMs after the request, or at stop: the bound on the request and its stream. Cleared on release. */
  signal: ClearableSignal
  onAbort: () => void
  stream: Stream | undefined
  /** Its connection goes through a circuit relay. */
  relayed: boolean
  /** Set once `response` or `request-failed` has been delivered. */
  ended: boolean
}

interface InboundStream {
  peer: PeerId
  /** On a connection through a circuit relay. */
  relayed: boolean
  stream: Stream
  reader: FrameReader
  admission: PeerAdmission
  /** Requests delivered and not answered yet, oldest first. */
  unanswered: RequestId[]
  /** The remote finished writing and all it wrote was read (or the stream was let go). */
  ended: boolean
  /** Closes the stream when idle, or once the remote has ended and the wait for answers is over. */
  timer: NodeJS.Timeout | undefined
}

interface PeerAdmission {
  /** Requests the peer may send now: refilled at inboundRequestsPerSecondMax up to inboundRequestsBurstMax. */
  tokens: number
  updatedMs: Millis
  /** Streams the peer can still send requests on. */
  streamCount: number
  /** Hung up for flooding, and not admitted a request since. */
  flooded: boolean
}

export class RequestStreams<Message> {
  readonly #context: RequestStreamsContext<Message>
  readonly #codec: WireCodec<Message>
  /** The codec's own id: metrics are labelled with it. */
  readonly #protocol: string
  /** Every id a request stream may be negotiated under, newest first. */
  readonly #protocols: readonly string[]
  readonly #metrics: ProtocolMetrics
  readonly #limits: ProtocolDriverLimits
  readonly #outbound = new Set<OutboundRequest>()
  readonly #inbound = new Set<InboundStream>()
  /** Inbound requests the core may still answer, by the id the driver gave them. */
  readonly #unanswered = new Map<RequestId, InboundStream>()
  /** Outlives connections, so that reconnecting does not refill a peer's bucket. */
  readonly #admissions = new Map<PeerId, PeerAdmission>()
  #nextInboundId: RequestId = 1

  constructor(context: RequestStreamsContext<Message>) {
    this.#context = context
    this.#codec = context.codec
    this.#protocol = context.codec.protocol
    this.#protocols = protocolIdsOf(context.codec)
    this.#metrics = context.metrics
    this.#limits = context.limits
  }

  /** Outbound requests held: in flight, or ended with their stream still closing. */
  get outboundCount(): number {
    return this.#outbound.size
  }

  get inboundStreamCount(): number {
    return this.#inbound.size
  }

  // --- outbound --------------------------------------------------------------------------

  request(action: RequestToSend<Message>): void {
    const { to: peer, id } = action
    if (this.#context.stopSignal.aborted) return this.#failEarly(peer, id, 'stopped')
    if (this.#outbound.size >= this.#limits.requestsInFlightMax) return this.#failEarly(peer, id, 'too-many-requests')
    const body = this.#codec.encode(action.message)
    if (body.byteLength > this.#codec.frameBytesMax) return this.#failEarly(peer, id, 'request-too-large')
    const signal = anySignal([AbortSignal.timeout(this.#limits.requestTimeoutMs), this.#context.stopSignal])
    const request: OutboundRequest = { peer, id, signal, onAbort: () => {}, stream: undefined, relayed: false, ended: false }
    request.onAbort = () => {
      this.#fail(request, this.#context.stopSignal.aborted ? 'stopped' : 'timeout')
      // Answered or not, a stream lives no longer than its request's bound.
      request.stream?.abort(new Error('request bound reached'))
    }
    signal.addEventListener('abort', request.onAbort, { once: true })
    this.#outbound.add(request)
    void this.#run(request, action.addresses, encodeFrame(body), action.oneWay)
  }

  async #run(request: OutboundRequest, addresses: readonly string[], frame: Uint8Array, oneWay: boolean): Promise<void> {
    const stream = await this.#open(request, addresses)
    if (stream === undefined) return this.#release(request)
    request.stream = stream
    this.#metrics.streamOpened(this.#protocol, 'outbound')
    stream.addEventListener('close', (event) => {
      this.#metrics.streamClosed(this.#protocol, 'outbound')
      // Both halves closed cleanly: ours only closes after the request was written.
      if (oneWay && event.error === undefined) this.#end(request, undefined)
      else this.#fail(request, 'stream-closed')
      this.#release(request)
    })
    if (!oneWay) {
      const reader = new FrameReader(this.#codec.frameBytesMax)
      stream.addEventListener('message', (event) => this.#onResponseData(request, reader, event.data))
      // The remote finished writing: if no response came, none will.
      stream.addEventListener('end', () => {
        this.#fail(request, 'stream-closed')
        this.#closeOutbound(request)
      })
    }
    try {
      stream.send(frame)
    } catch {
      this.#fail(request, 'stream-closed')
      stream.abort(new Error('send failed'))
      return
    }
    this.#metrics.frameSent(this.#protocol, frame.byteLength, request.relayed)
    if (!oneWay) return
    try {
      await stream.close({ signal: request.signal })
    } catch {
      // Reset by the remote, or timed out or stopped (and reported as such already).
      this.#fail(request, 'stream-closed')
      stream.abort(new Error('close failed'))
      return
    }
    this.#end(request, undefined)
  }

  async #open(request: OutboundRequest, addresses: readonly string[]): Promise<Stream | undefined> {
    const connection = await this.#context.connect(request.peer, addresses)
    // Timed out or stopped while dialling: reported already.
    if (request.ended) return undefined
    if (typeof connection === 'string') {
      this.#fail(request, requestFailureOf(connection))
      return undefined
    }
    request.relayed = connection.limits !== undefined
    let stream: Stream
    const signal = anySignal([AbortSignal.timeout(this.#limits.streamOpenTimeoutMs), request.signal])
    try {
      // Multistream-select offers the ids in turn, newest first.
      stream = await connection.newStream([...this.#protocols], {
        signal,
        // Without a handler (not serving), libp2p would apply its own default.
        maxOutboundStreams: this.#limits.outboundStreamsPerConnectionMax,
        runOnLimitedConnection: true,
      })
    } catch (error) {
      this.#fail(request, (error as Error | undefined)?.name === 'UnsupportedProtocolError' ? 'protocol-unsupported' : 'stream-open-failed')
      return undefined
    } finally {
      signal.clear()
    }
    // Ended while negotiating, or closed meanwhile: its 'close' event has passed and would never reach us.
    if (request.ended || stream.status !== 'open') {
      stream.abort(new Error('request ended'))
      this.#fail(request, 'stream-open-failed')
      return undefined
    }
    return stream
  }

  #onResponseData(request: OutboundRequest, reader: FrameReader, chunk: Uint8Array | Uint8ArrayList): void {
    // Bytes after the response, or after the request ended, are not read.
    if (request.ended) return
    reader.push(chunk)
    const read = reader.read()
    if (!read.ok) return this.#refuseResponse(request, read.error.code)
    if (read.frame === undefined) return
    const decoded = decodeFrame(this.#codec, read.frame)
    if (!decoded.ok) return this.#refuseResponse(request, decoded.error.code)
    this.#metrics.frameReceived(this.#protocol, read.frame.byteLength, request.relayed)
    this.#end(request, decoded.value)
    this.#closeOutbound(request)
  }

  #refuseResponse(request: OutboundRequest, reason: string): void {
    this.#metrics.rejected(this.#protocol, reason)
    this.#fail(request, reason)
    request.stream?.abort(new Error(`rejected: ${reason}`))
  }

  /** Closes our half; the remote closes its own on seeing that, or the request's bound aborts the stream. */
  #closeOutbound(request: OutboundRequest): void {
    const stream = request.stream
    stream?.close({ signal: request.signal }).catch(() => stream.abort(new Error('close failed')))
  }

  #end(request: OutboundRequest, message: Message | undefined): void {
    if (request.ended) return
    request.ended = true
    this.#context.deliver({ type: 'response', from: request.peer, id: request.id, message })
  }

  #fail(request: OutboundRequest, reason: string): void {
    if (request.ended) return
    request.ended = true
    this.#metrics.requestFailed(this.#protocol, reason)
    this.#context.deliver({ type: 'request-failed', peer: request.peer, id: request.id, reason })
  }

  #failEarly(peer: PeerId, id: RequestId, reason: RequestFailure): void {
    this.#metrics.requestFailed(this.#protocol, reason)
    this.#context.deliver({ type: 'request-failed', peer, id, reason })
  }

  #release(request: OutboundRequest): void {
    this.#outbound.delete(request)
    // Cleared, the request's signal no longer aborts: its own listener goes with it.
    request.signal.clear()
  }

  // --- inbound ---------------------------------------------------------------------------

  /** Takes a remote's stream, which the driver found open on an open connection. */
  accept(stream: Stream, peer: PeerId, relayed: boolean): void {
    const admission = this.#admissionOf(peer)
    if (admission.streamCount >= this.#limits.inboundRequestStreamsPerPeerMax) {
      this.#metrics.rejected(this.#protocol, 'too-many-streams')
      stream.abort(new Error('too many streams'))
      return
    }
    admission.streamCount++
    const inbound: InboundStream = { peer, relayed, stream, reader: new FrameReader(this.#codec.frameBytesMax), admission, unanswered: [], ended: false, timer: undefined }
    inbound.timer = setTimeout(() => this.#onIdle(inbound), this.#limits.requestTimeoutMs).unref()
    this.#inbound.add(inbound)
    this.#metrics.streamOpened(this.#protocol, 'inbound')
    stream.addEventListener('message', (event) => this.#onRequestData(inbound, event.data))
    stream.addEventListener('end', () => this.#onRequestsEnd(inbound))
    stream.addEventListener('drain', () => {
      if (stream.readStatus === 'paused') stream.resume()
    })
    stream.addEventListener('close', () => {
      this.#metrics.streamClosed(this.#protocol, 'inbound')
      this.#forget(inbound)
    })
  }

  #onRequestData(inbound: InboundStream, chunk: Uint8Array | Uint8ArrayList): void {
    if (!this.#inbound.has(inbound)) return
    inbound.reader.push(chunk)
    for (;;) {
      const read = inbound.reader.read()
      if (!read.ok) return this.#refuse(inbound, read.error.code)
      if (read.frame === undefined) return
      // Metered before decoding: decoding is the work a flood would make us do.
      if (!this.#admitRequest(inbound)) return this.#refuse(inbound, 'request-rate')
      const decoded = decodeFrame(this.#codec, read.frame)
      if (!decoded.ok) return this.#refuse(inbound, decoded.error.code)
      this.#metrics.frameReceived(this.#protocol, read.frame.byteLength, inbound.relayed)
      inbound.timer?.refresh()
      const id = this.#nextInboundId++
      inbound.unanswered.push(id)
      this.#unanswered.set(id, inbound)
      // A core need not answer (one-way messages): past the bound the oldest are let go.
      if (inbound.unanswered.length > this.#limits.unansweredRequestsPerStreamMax) this.#unanswered.delete(inbound.unanswered.shift()!)
      const { addresses, server } = this.#context.requester(inbound.peer)
      this.#context.deliver({ type: 'request', from: inbound.peer, id, message: decoded.value, addresses, remoteIsServer: server })
      // The core's actions may have closed the stream (a disconnect, say).
      if (!this.#inbound.has(inbound)) return
    }
  }

  /**
   * Answers go out in the order the core gives them: a remote reads them in the order of its
   * requests, so a core answers one stream's requests in order (clients wait for each answer
   * before the next request anyway).
   */
  respond(action: Response<Message>): void {
    const inbound = this.#unanswered.get(action.id)
    if (inbound === undefined || inbound.peer !== action.to) return this.#metrics.dropped(this.#protocol, 'request-unknown')
    this.#unanswered.delete(action.id)
    inbound.unanswered.splice(inbound.unanswered.indexOf(action.id), 1)
    this.#write(inbound, action.message)
    if (inbound.ended && inbound.unanswered.length === 0) this.#close(inbound)
  }

  #write(inbound: InboundStream, message: Message): void {
    const body = this.#codec.encode(message)
    if (body.byteLength > this.#codec.frameBytesMax) return this.#metrics.dropped(this.#protocol, 'frame-too-large')
    const frame = encodeFrame(body)
    const stream = inbound.stream
    if (stream.writeStatus !== 'writable') return this.#metrics.dropped(this.#protocol, 'stream-closed')
    let writable: boolean
    try {
      writable = stream.send(frame)
    } catch {
      return this.#metrics.dropped(this.#protocol, 'stream-closed')
    }
    this.#metrics.frameSent(this.#protocol, frame.byteLength, inbound.relayed)
    if (!inbound.ended) inbound.timer?.refresh()
    // A remote that does not read its answers gets no more requests read until it does;
    // its answers pile up no further than the requests it already had answered.
    if (!writable && stream.readStatus === 'readable') stream.pause()
  }

  #onRequestsEnd(inbound: InboundStream): void {
    if (!this.#inbound.has(inbound) || inbound.ended) return
    inbound.ended = true
    // A stream that can bring no more requests no longer counts against the peer.
    inbound.admission.streamCount--
    if (inbound.unanswered.length === 0) return this.#close(inbound)
    // The core may still answer shortly; one-way messages it never answers, so the wait is short.
    clearTimeout(inbound.timer)
    inbound.timer = setTimeout(() => this.#close(inbound), this.#limits.stopTimeoutMs).unref()
  }

  #onIdle(inbound: InboundStream): void {
    if (!this.#inbound.has(inbound)) return
    this.#metrics.rejected(this.#protocol, 'stream-idle')
    this.#close(inbound)
  }

  #close(inbound: InboundStream): void {
    if (this.#forget(inbound)) void closeStream(inbound.stream, AbortSignal.timeout(this.#limits.stopTimeoutMs))
  }

  #refuse(inbound: InboundStream, reason: string): void {
    this.#metrics.rejected(this.#protocol, reason)
    this.#forget(inbound)
    inbound.stream.abort(new Error(`rejected: ${reason}`))
  }

  /** Lets go of a stream and its unanswered requests; false if it was let go already. */
  #forget(inbound: InboundStream): boolean {
    if (!this.#inbound.delete(inbound)) return false
    clearTimeout(inbound.timer)
    for (const id of inbound.unanswered) this.#unanswered.delete(id)
    inbound.unanswered = []
    if (!inbound.ended) inbound.admission.streamCount--
    inbound.ended = true
    return true
  }

  /** Closes every inbound stream, gracefully within stopTimeoutMs; their unanswered requests are let go. */
  async closeInbound(): Promise<void> {
    const closing: Array<Promise<void>> = []
    for (const inbound of [...this.#inbound]) {
      this.#forget(inbound)
      closing.push(closeStream(inbound.stream, AbortSignal.timeout(this.#limits.stopTimeoutMs)))
    }
    await Promise.all(closing)
  }

  /**
   * At stop: outbound requests end with the driver's stop signal (counted 'stopped'; the core,
   * which gets no input after stop, is not told) and their streams abort; inbound streams close.
   */
  async stop(): Promise<void> {
    await this.closeInbound()
    this.#admissions.clear()
  }

  // --- admission -------------------------------------------------------------------------

  #admissionOf(peer: PeerId): PeerAdmission {
    let admission = this.#admissions.get(peer)
    if (admission !== undefined) return admission
    if (this.#admissions.size >= ADMISSION_PEERS_SWEEP_COUNT) this.#sweepAdmissions()
    admission = { tokens: this.#limits.inboundRequestsBurstMax, updatedMs: this.#context.now(), streamCount: 0, flooded: false }
    this.#admissions.set(peer, admission)
    return admission
  }

  /** Forgets peers without streams whose bucket is full again: a new record would be the same. */
  #sweepAdmissions(): void {
    const now = this.#context.now()
    for (const [peer, admission] of this.#admissions) {
      this.#refill(admission, now)
      if (admission.streamCount === 0 && admission.tokens >= this.#limits.inboundRequestsBurstMax) this.#admissions.delete(peer)
    }
  }

  #refill(admission: PeerAdmission, now: Millis): void {
    const elapsedMs = Math.max(0, now - admission.updatedMs)
    admission.tokens = Math.min(this.#limits.inboundRequestsBurstMax, admission.tokens + (elapsedMs * this.#limits.inboundRequestsPerSecondMax) / 1_000)
    admission.updatedMs = now
  }

  /**
   * Takes a token for a request. A refused request takes one too, down to -burst: a peer that
   * keeps sending past its rate gets there, is hung up, and waits longer to be served again.
   */
  #admitRequest(inbound: InboundStream): boolean {
    const admission = inbound.admission
    this.#refill(admission, this.#context.now())
    if (admission.tokens >= 1) {
      admission.tokens--
      admission.flooded = false
      return true
    }
    const floor = -this.#limits.inboundRequestsBurstMax
    admission.tokens = Math.max(floor, admission.tokens - 1)
    if (admission.tokens === floor && !admission.flooded) {
      admission.flooded = true
      this.#context.disconnect(inbound.peer, 'request-flood')
    }
    return false
  }
}

function requestFailureOf(failure: DialFailure): RequestFailure {
  switch (failure) {
    case 'too-many-dials':
    case 'bad-peer-id':
    case 'self':
    case 'stopped':
    case 'protocol-unsupported':
      return failure
    default:
      return 'dial-failed'
  }
}
