/**
 * The swarm core's parameters. The choking defaults are BitTorrent's (BEP 3 and the
 * mainline client): 4 regular unchoke slots chosen by rate every 10 s, 1 optimistic slot
 * rotated every 30 s, a peer snubbed after 60 s without a block.
 */
import { ShoalError } from '../errors.ts'

export type SeedUnchoke = 'round-robin' | 'upload-rate'

export interface SwarmConfig {
  unchokeSlots: number
  optimisticUnchokeSlots: number
  rechokeIntervalMs: number
  optimisticRotateMs: number
  /**
   * How a peer that holds the whole content picks whom to serve: 'round-robin' serves the
   * interested peers that got least from it so far (every peer gets an equal share, which
   * spreads the content fastest), 'upload-rate' the fastest downloaders (mainline's rule).
   */
  seedUnchoke: SeedUnchoke
  /**
   * Serve content we hold without having fetched it (we published it) as an initial seed,
   * BEP 16's super-seeding: each peer is told of a few leaves at a time, those offered least,
   * so that our uplink gives the swarm every leaf once before any twice. For a publisher of
   * content many fetch at once; a downloader fetching in order would get leaves out of order.
   */
  initialSeeding: boolean
  /** A peer that unchoked us and sent nothing for this long no longer earns a regular slot. */
  snubbedAfterMs: number
  /** Leaves picked at random before rarest-first: a newcomer needs something to trade soon. */
  randomFirstCount: number
  /**
   * How long a peer that has nothing we lack keeps our interest before we say not-interested:
   * one that gets something new for us meanwhile keeps the slot it gave us. 0: at once.
   */
  notInterestedDelayMs: number
  /** Requests kept in flight per peer: enough to fill its bandwidth-delay product, within these bounds. */
  requestsPerPeerMin: number
  requestsPerPeerMax: number
  /** A request unanswered for this long is given up and asked of another peer. */
  requestTimeoutMs: number
  /**
   * The same for an inner node: every download waits for the DAG, which any holder serves
   * at once whatever its choke state, so a silent holder is given up sooner (and not asked
   * for the DAG again in that session).
   */
  nodeRequestTimeoutMs: number
  /** Timeouts in a row after which a peer leaves the session (it advertises blocks it never sends). */
  requestTimeoutsMax: number
  /** Requests a peer may queue with us; more are refused as 'overloaded' and counted. */
  queuedRequestsPerPeerMax: number
  /** Refusals for overload after which a flooding peer is disconnected. */
  overloadedRequestsMax: number
  /** Block reads from the store in flight per peer. */
  readsPerPeerMax: number
  /** In endgame, how many peers at most are asked for the same block. */
  endgameRequestsPerBlockMax: number
  peersPerSessionMax: number
  /** Downloads at once; another fetch fails with TOO_MANY_SESSIONS. */
  fetchesMax: number
  /** Below this many session peers, a download asks for more sources, at most every sourcesRefreshMs. */
  sourcesWantedMin: number
  sourcesRefreshMs: number
  /**
   * At most one `have` per peer per this interval: a have after a quiet spell goes at once,
   * those that follow wait for the interval's end and go together. 0 sends each at once.
   */
  haveBatchMs: number
  /** Progress events per download; 0 for none (simulation). */
  progressIntervalMs: number
  rateWindowMs: number
  /** Token-bucket limits in bytes per second; Infinity for none. */
  uploadBytesPerSecondMax: number
  downloadBytesPerSecondMax: number
  peerUploadBytesPerSecondMax: number
  peerDownloadBytesPerSecondMax: number
  /** A peer that sent a bad block is refused for this long. */
  badPeerBanMs: number
  /** Unrequested blocks (or blocks for content we do not fetch) before the sender is disconnected. */
  unsolicitedBlocksMax: number
  /** A seeding session with no peers is dropped after this long (it reopens on request). */
  idleSessionMs: number
  /** The block size assumed before any block has arrived (for rate limits and pipelining). */
  blockBytesTypical: number
}

export const DEFAULT_SWARM_CONFIG: SwarmConfig = {
  unchokeSlots: 4,
  optimisticUnchokeSlots: 1,
  rechokeIntervalMs: 10_000,
  optimisticRotateMs: 30_000,
  seedUnchoke: 'round-robin',
  initialSeeding: false,
  snubbedAfterMs: 60_000,
  randomFirstCount: 4,
  notInterestedDelayMs: 2_000,
  requestsPerPeerMin: 2,
  requestsPerPeerMax: 64,
  requestTimeoutMs: 30_000,
  nodeRequestTimeoutMs: 5_000,
  requestTimeoutsMax: 3,
  queuedRequestsPerPeerMax: 256,
  overloadedRequestsMax: 64,
  readsPerPeerMax: 2,
  endgameRequestsPerBlockMax: 3,
  peersPerSessionMax: 50,
  fetchesMax: 32,
  sourcesWantedMin: 8,
  sourcesRefreshMs: 30_000,
  haveBatchMs: 1_000,
  progressIntervalMs: 200,
  rateWindowMs: 20_000,
  uploadBytesPerSecondMax: Infinity,
  downloadBytesPerSecondMax: Infinity,
  peerUploadBytesPerSecondMax: Infinity,
  peerDownloadBytesPerSecondMax: Infinity,
  badPeerBanMs: 600_000,
  unsolicitedBlocksMax: 16,
  idleSessionMs: 300_000,
  blockBytesTypical: 1024 * 1024,
}

export function swarmConfig(overrides: Partial<SwarmConfig> = {}): SwarmConfig {
  const config = { ...DEFAULT_SWARM_CONFIG, ...overrides }
  const positive: (keyof SwarmConfig)[] = [
    'rechokeIntervalMs', 'optimisticRotateMs', 'snubbedAfterMs', 'requestsPerPeerMin', 'requestTimeoutMs', 'nodeRequestTimeoutMs', 'requestTimeoutsMax',
    'queuedRequestsPerPeerMax', 'overloadedRequestsMax', 'readsPerPeerMax', 'endgameRequestsPerBlockMax', 'peersPerSessionMax', 'fetchesMax',
    'sourcesRefreshMs', 'rateWindowMs', 'uploadBytesPerSecondMax', 'downloadBytesPerSecondMax', 'peerUploadBytesPerSecondMax',
    'peerDownloadBytesPerSecondMax', 'unsolicitedBlocksMax', 'idleSessionMs', 'blockBytesTypical',
  ]
  for (const key of positive) {
    if (!((config[key] as number) > 0)) throw new ShoalError('INVALID_CONFIG', `swarm.${key} must be > 0, not ${config[key]}`)
  }
  const nonNegative: (keyof SwarmConfig)[] = ['unchokeSlots', 'optimisticUnchokeSlots', 'randomFirstCount', 'notInterestedDelayMs', 'sourcesWantedMin', 'haveBatchMs', 'progressIntervalMs', 'badPeerBanMs']
  for (const key of nonNegative) {
    if (!((config[key] as number) >= 0)) throw new ShoalError('INVALID_CONFIG', `swarm.${key} must be >= 0, not ${config[key]}`)
  }
  if (config.unchokeSlots + config.optimisticUnchokeSlots === 0) throw new ShoalError('INVALID_CONFIG', 'swarm needs at least one unchoke slot')
  if (config.requestsPerPeerMax < config.requestsPerPeerMin) throw new ShoalError('INVALID_CONFIG', 'swarm.requestsPerPeerMax must be >= requestsPerPeerMin')
  if (config.seedUnchoke !== 'round-robin' && config.seedUnchoke !== 'upload-rate') {
    throw new ShoalError('INVALID_CONFIG', `swarm.seedUnchoke must be 'round-robin' or 'upload-rate', not ${String(config.seedUnchoke)}`)
  }
  return config
}
