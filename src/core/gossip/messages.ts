/**
 * GossipSub's messages as the core sees them: the pubsub RPC protobuf (libp2p/specs
 * pubsub/README.md, gossipsub-v1.0/v1.1/v1.2) with peer ids as text and message ids as
 * MessageId strings. wire/gossip.ts maps them to and from bytes, enforcing GOSSIP_LIMITS.
 */
import type { PeerId } from '../sans-io.ts'

export const MESHSUB_PROTOCOL_V12 = '/meshsub/1.2.0'
export const MESHSUB_PROTOCOL_V11 = '/meshsub/1.1.0'
export const MESHSUB_PROTOCOL_V10 = '/meshsub/1.0.0'
/** Newest first: the order in which they are offered and preferred. */
export const MESHSUB_PROTOCOLS: readonly string[] = [MESHSUB_PROTOCOL_V12, MESHSUB_PROTOCOL_V11, MESHSUB_PROTOCOL_V10]

/**
 * A message id's bytes as a string of char codes 0–255, one per byte: a lossless, cheap
 * map key. The spec's default id is the source's peer id bytes followed by the seqno.
 */
export type MessageId = string & { readonly __brand: 'MessageId' }

export function messageIdFromBytes(bytes: Uint8Array): MessageId {
  let text = ''
  // Ids are short (a peer id and a seqno, about 46 bytes); chunks keep apply()'s argument count low.
  for (let start = 0; start < bytes.length; start += 4_096) {
    text += String.fromCharCode.apply(null, bytes.subarray(start, start + 4_096) as unknown as number[])
  }
  return text as MessageId
}

export function messageIdToBytes(id: MessageId): Uint8Array {
  const bytes = new Uint8Array(id.length)
  for (let index = 0; index < id.length; index++) bytes[index] = id.charCodeAt(index)
  return bytes
}

/** A seqno's length under StrictSign: a big-endian 64-bit counter. */
export const SEQNO_BYTES = 8

/** A published message, as signed by its source under StrictSign. */
export interface GossipMessage {
  topic: string
  data: Uint8Array
  /** The source; absent under StrictNoSign. */
  from?: PeerId
  /** SEQNO_BYTES under StrictSign. */
  seqno?: Uint8Array
  signature?: Uint8Array
  /** The source's public key, when it cannot be read from its peer id. */
  key?: Uint8Array
  /**
   * Set by the decoder when a field is present but unreadable (a `from` that is not a peer
   * id): the message is invalid, and its sender is penalised as for any invalid message.
   */
  defect?: string
}

export interface SubscriptionChange {
  topic: string
  subscribe: boolean
}

export interface IHave {
  topic: string
  messageIds: MessageId[]
}

/** A peer offered in a PRUNE's peer exchange. */
export interface ExchangedPeer {
  peer: PeerId
  /** A signed peer record (libp2p envelope) carrying the peer's addresses, when the pruner had one. */
  signedPeerRecord?: Uint8Array
}

export interface Prune {
  topic: string
  peers: ExchangedPeer[]
  /** Seconds before the pruned peer may GRAFT again (v1.1); absent from v1.0 peers. */
  backoffSeconds?: number
}

export interface GossipControl {
  ihave: IHave[]
  /** The ids of every ControlIWant in the RPC, in order. */
  iwant: MessageId[]
  /** Topics of the GRAFTs. */
  graft: string[]
  prune: Prune[]
  /** The ids of every ControlIDontWant in the RPC, in order (v1.2). */
  idontwant: MessageId[]
}

/** One RPC: a frame on the wire. */
export interface GossipRpc {
  subscriptions: SubscriptionChange[]
  messages: GossipMessage[]
  /** Absent when the RPC carries no control message. */
  control?: GossipControl
}

/** Bounds every decoded RPC obeys; a larger one is refused whole (and counted). */
export const GOSSIP_LIMITS = {
  /** One frame: a message of messageDataBytesMax with its envelope. */
  frameBytesMax: 1024 * 1024 + 64 * 1024,
  /** A message's data, at most; the core refuses larger (config messageDataBytesMax may be lower). */
  messageDataBytesMax: 1024 * 1024,
  topicBytesMax: 256,
  messageIdBytesMax: 256,
  peerIdBytesMax: 128,
  signatureBytesMax: 512,
  keyBytesMax: 1024,
  seqnoBytesMax: 64,
  subscriptionsPerRpcMax: 1024,
  messagesPerRpcMax: 1024,
  /** ControlIHave entries per RPC (go-libp2p sends up to 5,000 ids in one entry: messageIdsPerRpcMax bounds those). */
  ihavePerRpcMax: 1024,
  /** Message ids in all the RPC's IHAVE, IWANT or IDONTWANT entries, for each of the three. */
  messageIdsPerRpcMax: 5_000,
  iwantPerRpcMax: 1024,
  idontwantPerRpcMax: 1024,
  graftPerRpcMax: 1024,
  prunePerRpcMax: 1024,
  /** Peers read from one PRUNE before the RPC is refused. */
  prunePeersMax: 64,
  signedPeerRecordBytesMax: 4 * 1024,
} as const
