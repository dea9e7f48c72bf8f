/**
 * The DHT's messages as the core sees them: the libp2p kad-dht protobuf (kad-dht/README.md,
 * "RPC messages") with peer ids as text and addresses as multiaddr strings. wire/kad.ts maps
 * them to and from bytes, enforcing the bounds below.
 */
import type { PeerId } from '../sans-io.ts'

export type KadMessageType = 'PUT_VALUE' | 'GET_VALUE' | 'ADD_PROVIDER' | 'GET_PROVIDERS' | 'FIND_NODE' | 'PING'

/** The spec's ConnectionType, which peers report about one another. */
export type KadConnection = 'not-connected' | 'connected' | 'can-connect' | 'cannot-connect'

export interface KadPeer {
  id: PeerId
  addresses: readonly string[]
  connection: KadConnection
}

export interface KadRecord {
  key: Uint8Array
  value: Uint8Array
  /** RFC 3339 time the receiver stored it; informational, as in the spec. */
  timeReceived: string
}

export interface KadMessage {
  type: KadMessageType
  /** FIND_NODE: the peer id's bytes; GET_PROVIDERS / ADD_PROVIDER: a multihash; values: the record key. */
  key: Uint8Array
  record: KadRecord | undefined
  closerPeers: readonly KadPeer[]
  providerPeers: readonly KadPeer[]
  /**
   * Peer entries the decoder dropped, so the core can count them: those past
   * KAD_LIMITS.peersPerListMax in a list, and those whose id is not a valid libp2p peer id.
   * Absent when none were dropped; encode ignores it.
   */
  peersDropped?: number
}

/** Bounds every decoded message obeys; larger input is rejected (or, for peer lists, truncated) and counted. */
export const KAD_LIMITS = {
  /** One frame: a record of valueBytesMax plus peer lists fits with room. */
  frameBytesMax: 64 * 1024,
  keyBytesMax: 256,
  valueBytesMax: 16 * 1024,
  /** Peers kept from one list; the rest of a longer list is dropped (counted). */
  peersPerListMax: 20,
  /** Peers read from one list before the message is refused outright. */
  peersPerListHardMax: 256,
  addressesPerPeerMax: 8,
  addressBytesMax: 256,
  peerIdBytesMax: 128,
} as const
