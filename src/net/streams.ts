/**
 * What both styles of ProtocolDriver do alike with a stream: name the protocol ids it may be
 * negotiated with, decode a frame without letting a codec's exception through, and close a
 * stream gracefully within a bound. Used by protocol-driver.ts (long-lived streams) and
 * request-streams.ts (a stream per request).
 */
import type { Stream } from '@libp2p/interface'
import type { DecodeResult, WireCodec } from '../core/sans-io.ts'

/**
 * The ids a codec's protocol is spoken under, newest first: its own, then its fallbacks. An
 * outbound stream offers them in this order and multistream-select settles on the first the
 * remote accepts.
 */
export function protocolIdsOf<Message>(codec: WireCodec<Message>): readonly string[] {
  return [codec.protocol, ...codec.fallbackProtocols ?? []]
}

/**
 * A codec must return errors; one that throws is refused like bad input ('decoder-threw')
 * rather than let a remote crash the node with it.
 */
export function decodeFrame<Message>(codec: WireCodec<Message>, frame: Uint8Array): DecodeResult<Message> {
  try {
    return codec.decode(frame)
  } catch {
    return { ok: false, error: { code: 'decoder-threw' } }
  }
}

/** Closes a stream after what it holds is written, and aborts it if that takes past `signal`. */
export async function closeStream(stream: Stream, signal: AbortSignal): Promise<void> {
  try {
    await stream.close({ signal })
  } catch {
    stream.abort(new Error('close timed out'))
    return
  }
  if (stream.status !== 'open' && stream.status !== 'closing') return
  // Our half is closed; wait (bounded) for the remote to close its half.
  await new Promise<void>((resolve) => {
    const onAbort = (): void => stream.abort(new Error('close timed out'))
    stream.addEventListener('close', () => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, { once: true })
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
}
