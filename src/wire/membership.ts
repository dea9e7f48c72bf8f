/**
 * The codec of /shoal/membership/1.0.0: protobuf frames (proto/membership.proto), each
 * carrying exactly one message. Decoding is bounded: frame size, peers per exchange,
 * addresses per peer and the length of every string.
 */
import { asPeerId, type DecodeResult, type WireCodec, wireError } from '../core/sans-io.ts'
import { MEMBERSHIP_PROTOCOL, type MembershipMessage } from '../core/membership/membership.ts'
import { MembershipFrame } from './proto/membership.ts'

export const MEMBERSHIP_FRAME_BYTES_MAX = 32 * 1024
export const EXCHANGE_PEERS_COUNT_MAX = 24
export const PEER_ADDRESSES_COUNT_MAX = 16
export const PEER_ID_LENGTH_MAX = 128
export const ADDRESS_LENGTH_MAX = 256

export const membershipCodec: WireCodec<MembershipMessage> = {
  protocol: MEMBERSHIP_PROTOCOL,
  frameBytesMax: MEMBERSHIP_FRAME_BYTES_MAX,
  encode: encodeMembership,
  decode: decodeMembership,
}

export function encodeMembership(message: MembershipMessage): Uint8Array {
  switch (message.type) {
    case 'ping': return MembershipFrame.encode({ ping: { nonce: message.nonce } })
    case 'pong': return MembershipFrame.encode({ pong: { nonce: message.nonce } })
    case 'exchange-request': return MembershipFrame.encode({ exchangeRequest: { count: message.count } })
    case 'exchange-response': return MembershipFrame.encode({
      exchangeResponse: { peers: message.peers.map(({ peer, addresses }) => ({ id: peer, addresses: [...addresses] })) },
    })
  }
}

/** Every code decodeMembership refuses a frame with. */
export const MEMBERSHIP_WIRE_ERROR_CODES: ReadonlySet<string> = new Set([
  'frame-too-large', 'malformed', 'too-many-items', 'empty-frame', 'several-messages', 'bad-peer-id', 'address-too-long',
])

export function decodeMembership(bytes: Uint8Array): DecodeResult<MembershipMessage> {
  if (bytes.byteLength > MEMBERSHIP_FRAME_BYTES_MAX) return wireError('frame-too-large', `${bytes.byteLength} bytes`)
  let frame: MembershipFrame
  try {
    frame = MembershipFrame.decode(bytes, {
      limits: { exchangeResponse: { peers: EXCHANGE_PEERS_COUNT_MAX, peers$: { addresses: PEER_ADDRESSES_COUNT_MAX } } },
    })
  } catch (error) {
    // protons throws on malformed protobuf and on exceeded limits; both name the cause.
    const name = (error as Error).name
    return wireError(name === 'MaxLengthError' ? 'too-many-items' : 'malformed', (error as Error).message)
  }
  const present = [frame.ping, frame.pong, frame.exchangeRequest, frame.exchangeResponse].filter((part) => part !== undefined).length
  if (present !== 1) return wireError(present === 0 ? 'empty-frame' : 'several-messages')
  if (frame.ping) return { ok: true, value: { type: 'ping', nonce: frame.ping.nonce } }
  if (frame.pong) return { ok: true, value: { type: 'pong', nonce: frame.pong.nonce } }
  if (frame.exchangeRequest) return { ok: true, value: { type: 'exchange-request', count: frame.exchangeRequest.count } }
  const peers = frame.exchangeResponse!.peers
  for (const record of peers) {
    if (record.id.length === 0 || record.id.length > PEER_ID_LENGTH_MAX) return wireError('bad-peer-id', `length ${record.id.length}`)
    if (record.addresses.some((address) => address.length > ADDRESS_LENGTH_MAX)) return wireError('address-too-long')
  }
  return { ok: true, value: { type: 'exchange-response', peers: peers.map((record) => ({ peer: asPeerId(record.id), addresses: record.addresses })) } }
}
