/**
 * ShoalApi: what a client can ask of a node. ShoalNode implements it in-process and
 * HttpClient (api/http-client.ts) over the daemon's HTTP API, so the CLI runs the same
 * code whether or not a daemon holds the repository. Values are plain JSON (CIDs as
 * text) because they cross HTTP; byte streams are async iterables.
 */
import type { CidProfile } from '../core/content/cid-profile.ts'
import type { PinType } from '../store/pin-store.ts'

export type { PinType }

export type AddCandidate =
  | { kind: 'file'; path: string; content: AsyncIterable<Uint8Array> }
  | { kind: 'directory'; path: string }
  | { kind: 'symlink'; path: string; target: string }

export interface AddOptions {
  cidProfile?: CidProfile
  /** Pin the roots recursively; default true. */
  pin?: boolean
  /**
   * How many files may be read at once; default 1. More is faster for many small files
   * but only for a source whose contents can be read in any order (files on disk, not
   * the parts of one upload stream).
   */
  fileConcurrency?: number
  signal?: AbortSignal
}

/** A root of an add: a candidate whose path has no '/'. */
export interface AddedRoot {
  path: string
  cid: string
  /** Bytes of the whole DAG under the root (what the blocks take, before deduplication). */
  size: number
}

export type EntryType = 'file' | 'directory' | 'symlink'

export interface EntryStat {
  cid: string
  type: EntryType
  /** File content bytes; 0 for directories. */
  size: number
  /** The link of a symlink. */
  target?: string
}

export interface DirectoryEntry extends EntryStat {
  name: string
}

export interface CatOptions {
  offset?: number
  length?: number
  signal?: AbortSignal
}

export interface NodeIdentity {
  peerId: string
  /** libp2p protobuf public key, base64 */
  publicKey: string
  agentVersion: string
  repoPath: string
  /** Addresses the host listens on (empty when the node is offline). */
  listenAddresses: string[]
  /** Addresses peers are told to dial, each ending in /p2p/<peer id>. */
  addresses: string[]
  /** What AutoNAT found: public (peers can dial us), private (behind a NAT), unknown; null offline. */
  reachability: 'public' | 'private' | 'unknown' | null
}

/** How a connection to a peer came about. Times in ms from the start of the connect. */
export interface ConnectResult {
  peerId: string
  /** The dial gave a connection through a circuit relay. */
  relayed: boolean
  connectMs: number
  /** The first byte of an answer on a new stream (a ping), or null if the ping failed. */
  firstByteMs: number | null
  /**
   * With waitDirectMs, for a relayed connection: ms from the relayed connection's opening to
   * a direct one (the WebRTC upgrade); null if none came within the wait.
   */
  upgradeMs: number | null
  /** Upgrade attempts made so far (the first may still be under way). */
  upgradeAttempts: number
}

export interface PeerConnection {
  remoteAddress: string
  direction: 'inbound' | 'outbound'
  /** Through a circuit relay rather than a direct transport connection. */
  relayed: boolean
  /** When the connection opened, in ms since the epoch. */
  openedMs: number
}

export interface PeerInfo {
  peerId: string
  connections: PeerConnection[]
  /** Round trip of the last membership ping; null until one is answered. */
  latencyMs: number | null
}

/** Shoal's metrics as `{ metric: { "label=value,...": value } }`, the figures of GET /metrics. */
export type NodeStats = Record<string, Record<string, number>>

export interface PinInfo {
  cid: string
  type: PinType
}

export interface GcResult {
  removedBlockCount: number
  removedByteCount: number
}

export interface RepoStat {
  path: string
  blockCount: number
  byteCount: number
  /** null when no quota is set */
  quotaBytes: number | null
  pinCount: number
}

export interface VerifyResult {
  blockCount: number
  /** CIDs of blocks that failed their hash; they are moved out of the store. */
  corrupt: string[]
}

export interface DhtPeer {
  peerId: string
  addresses: string[]
}

/** How a DHT query went (see core/kad QueryStats). */
export interface DhtQueryStats {
  hops: number
  requests: number
  failures: number
  durationMs: number
  firstResultMs: number | undefined
}

export interface DhtQueryResult {
  /** ok, not-found, timeout, cancelled, no-peers, busy */
  outcome: string
  stats: DhtQueryStats
}

export interface DhtBucket {
  /** Common prefix length with this node's key. */
  index: number
  contacts: Array<DhtPeer & { lastSeenMs: number }>
  replacementCount: number
}

export interface DhtTable {
  mode: 'server' | 'client'
  size: number
  buckets: DhtBucket[]
}

/** A pub/sub message as a subscriber sees it. */
export interface PubSubMessage {
  topic: string
  data: Uint8Array
  /** The source's peer id (absent under StrictNoSign). */
  from: string | undefined
  /** The message id, hex. */
  messageId: string
  /** The peer it came from (our own id for our own messages). */
  receivedFrom: string
}

export interface PubSubPublished {
  /** hex */
  messageId: string
  /** Peers the message was sent to; 0 when no peer is known to subscribe yet. */
  recipients: number
}

export interface PubSubSubscribeOptions {
  /** Aborting it ends the subscription, as close() does. */
  signal?: AbortSignal
}

/**
 * The messages of one topic, in order, until close() or the signal. A reader that falls
 * behind loses the oldest messages (counted in droppedCount) rather than holding memory
 * without bound. Iterate it once.
 */
export interface PubSubSubscription extends AsyncIterable<PubSubMessage> {
  readonly topic: string
  /** Messages lost so far because they came faster than they were read. */
  readonly droppedCount: number
  /** Ends the iteration; the node unsubscribes from the topic when no one else listens to it. */
  close(): void
}

export type FetchOrder = 'rarest' | 'in-order'

export interface FetchOptions {
  /** 'rarest' (default): fastest for the swarm; 'in-order': the file's bytes in order, for streaming. */
  order?: FetchOrder
  /** Pin once complete (default true), so that it stays and is served. */
  pin?: boolean
  signal?: AbortSignal
  /** Called at least every 250 ms while the download runs, and once at the end. */
  onProgress?: (progress: FetchProgress) => void
}

export interface FetchProgress {
  cid: string
  /** 'dag' while the inner nodes are fetched, then 'leaves', 'finishing' (every block is here; syncing to disk, pinning), 'complete'. */
  phase: 'dag' | 'leaves' | 'finishing' | 'complete'
  leafCount: number
  heldCount: number
  /** Bytes of verified blocks received from peers (a resumed download does not count what it had). */
  bytesReceived: number
  /** The file's size from its root, once the root is here; undefined for a directory. */
  totalBytes: number | undefined
  peerCount: number
  /** Peers currently sending to us (they unchoked us). */
  sendingPeerCount: number
  bytesPerSecond: number
  elapsedMs: number
}

export interface FetchResult {
  cid: string
  totalBytes: number | undefined
  bytesReceived: number
  leafCount: number
  peerCount: number
  durationMs: number
}

export interface LedgerEntry {
  peer: string
  bytesSent: number
  bytesReceived: number
  misbehaviours: Record<string, number>
  lastSeenMs: number
}

export interface ShoalApi {
  id(): Promise<NodeIdentity>
  add(candidates: AsyncIterable<AddCandidate>, options?: AddOptions): Promise<AddedRoot[]>
  /** `path` is a CID optionally followed by /sub/path, with or without a leading /ipfs/. */
  cat(path: string, options?: CatOptions): AsyncIterable<Uint8Array>
  stat(path: string): Promise<EntryStat>
  ls(path: string): Promise<DirectoryEntry[]>
  pinAdd(cid: string, options?: { recursive?: boolean }): Promise<PinInfo>
  pinRm(cid: string): Promise<PinInfo>
  pinLs(): Promise<PinInfo[]>
  gc(): Promise<GcResult>
  repoStat(): Promise<RepoStat>
  repoVerify(): Promise<VerifyResult>
  /** The following need the network, which runs only in the daemon; elsewhere they fail with OFFLINE. */
  peers(): Promise<PeerInfo[]>
  /** `address`: a multiaddr ending in /p2p/<peer id>, or a bare peer id looked up in the DHT. */
  swarmConnect(address: string, options?: { waitDirectMs?: number }): Promise<ConnectResult>
  swarmDisconnect(peerId: string): Promise<void>
  stats(): Promise<NodeStats>
  dhtFindPeer(peerId: string): Promise<DhtPeer & DhtQueryResult>
  dhtFindProviders(cid: string, options?: { max?: number }): Promise<{ providers: DhtPeer[] } & DhtQueryResult>
  dhtProvide(cid: string): Promise<{ storedCount: number } & DhtQueryResult>
  /** `key` is /ipns/<peer id> or /pk/<peer id>; the value comes back as bytes. */
  dhtGet(key: string): Promise<{ value: Uint8Array } & DhtQueryResult>
  dhtPut(key: string, value: Uint8Array): Promise<{ storedCount: number } & DhtQueryResult>
  dhtTable(): Promise<DhtTable>
  /** Downloads the DAG under `cid` from the swarm (resuming from what is stored); resolves once it is whole. */
  fetch(cid: string, options?: FetchOptions): Promise<FetchResult>
  /** What each peer gave and took in transfers, and how it misbehaved. */
  swarmLedger(): Promise<LedgerEntry[]>
  pubsubPublish(topic: string, data: Uint8Array): Promise<PubSubPublished>
  /** Topics this node subscribes to. */
  pubsubTopics(): Promise<string[]>
  /** Connected peers subscribed to `topic`. */
  pubsubPeers(topic: string): Promise<string[]>
  /** Resolves once the node is subscribed (a bad topic or too many topics fail here). */
  pubsubSubscribe(topic: string, options?: PubSubSubscribeOptions): Promise<PubSubSubscription>
  close(): Promise<void>
}
