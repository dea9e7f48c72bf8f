/**
 * GossipSub's parameters (gossipsub-v1.0.md and v1.1.md, "Parameters"), with the spec's
 * recommended defaults. GossipCore checks them once, at construction.
 */
import type { PeerId } from '../sans-io.ts'
import type { GossipMessage, MessageId } from './messages.ts'
import { DEFAULT_SCORE_PARAMS, DEFAULT_SCORE_THRESHOLDS, type ScoreParams, type ScoreThresholds } from './score.ts'

/** StrictSign: every message carries from, seqno and a signature. StrictNoSign: none of them. */
export type SignaturePolicy = 'strict-sign' | 'strict-no-sign'

export interface GossipParams {
  /** Mesh degree: the target, the low and high watermarks, the peers kept by score when pruning, and the outbound quota. */
  D: number
  Dlo: number
  Dhi: number
  Dscore: number
  Dout: number
  /** Peers gossiped to per topic per heartbeat, at least. */
  Dlazy: number
  /** v1.1 adaptive gossip: the fraction of eligible peers gossiped to, when that is more than Dlazy. */
  gossipFactor: number
  heartbeatIntervalMs: number
  heartbeatInitialDelayMs: number
  fanoutTtlMs: number
  /** Heartbeats of messages kept for IWANT, and of ids advertised in IHAVE. */
  mcacheLength: number
  mcacheGossip: number
  seenTtlMs: number
  /** How often one peer is sent the same message in answer to IWANT. */
  gossipRetransmission: number
  pruneBackoffMs: number
  unsubscribeBackoffMs: number
  /** Heartbeats a backoff is kept past its end before we GRAFT, for clock and latency slack. */
  backoffSlackHeartbeats: number
  /** A GRAFT this soon after a PRUNE costs an extra behaviour penalty. */
  graftFloodThresholdMs: number
  /** Peers offered in a PRUNE's peer exchange. */
  prunePeers: number
  /** Own messages go to every subscribed peer above publishThreshold, not just the mesh. */
  floodPublish: boolean
  opportunisticGraftTicks: number
  opportunisticGraftPeers: number
  /** An IWANT unanswered after this is a broken promise (P7). */
  iwantFollowupMs: number
  /** IHAVE messages read from one peer per heartbeat. */
  ihavePerHeartbeatMax: number
  /** Message ids in one IHAVE we send, and ids asked of one peer per heartbeat. */
  ihaveLengthMax: number
  /** Messages sent to one peer in answer to IWANT per heartbeat; more are refused and penalised. */
  iwantServedPerHeartbeatMax: number
  /** v1.2: send IDONTWANT for messages larger than idontwantMessageBytesMin to /meshsub/1.2.0 peers. */
  idontwant: boolean
  idontwantMessageBytesMin: number
  /** IDONTWANT ids remembered per peer; more are ignored. */
  idontwantPerPeerMax: number
  idontwantTtlHeartbeats: number
  /** A message's data, at most; larger is invalid (P4). */
  messageDataBytesMax: number
  /** Topics one peer may be subscribed to; more are ignored and penalised. */
  topicsPerPeerMax: number
  /** Messages awaiting the host's validation; more are ignored (not marked seen). */
  validationsPendingMax: number
  /** Dials to peers learnt by peer exchange, at once. */
  exchangeDialsMax: number
  /** Peers we always forward to and never graft (explicit peering); they are redialled every directConnectTicks. */
  directPeers: readonly PeerId[]
  directConnectTicks: number
  signaturePolicy: SignaturePolicy
  /** Scoring, or undefined for none: every peer scores 0 and no threshold applies. */
  scoring: { params: ScoreParams; thresholds: ScoreThresholds } | undefined
}

export interface GossipConfig extends GossipParams {
  self: PeerId
  /** The message id; undefined when the message lacks what it is computed from (invalid). */
  messageIdOf(message: GossipMessage): MessageId | undefined
  /** P5. */
  appSpecificScore?(peer: PeerId): number
  /** A signed peer record of a peer, to offer in peer exchange; undefined when not held. */
  signedPeerRecordOf?(peer: PeerId): Uint8Array | undefined
  /** A wall clock in ms, only to measure the time spent computing scores (PeerScore.computeMs). */
  scoreClock?(): number
}

export const DEFAULT_GOSSIP_PARAMS: GossipParams = {
  D: 6,
  Dlo: 4,
  Dhi: 12,
  Dscore: 4,
  Dout: 2,
  Dlazy: 6,
  gossipFactor: 0.25,
  heartbeatIntervalMs: 1_000,
  heartbeatInitialDelayMs: 100,
  fanoutTtlMs: 60_000,
  mcacheLength: 5,
  mcacheGossip: 3,
  seenTtlMs: 120_000,
  gossipRetransmission: 3,
  pruneBackoffMs: 60_000,
  unsubscribeBackoffMs: 10_000,
  backoffSlackHeartbeats: 1,
  graftFloodThresholdMs: 10_000,
  prunePeers: 16,
  floodPublish: true,
  opportunisticGraftTicks: 60,
  opportunisticGraftPeers: 2,
  iwantFollowupMs: 3_000,
  ihavePerHeartbeatMax: 10,
  ihaveLengthMax: 5_000,
  iwantServedPerHeartbeatMax: 1_000,
  idontwant: true,
  idontwantMessageBytesMin: 1_024,
  idontwantPerPeerMax: 5_000,
  idontwantTtlHeartbeats: 3,
  messageDataBytesMax: 1024 * 1024,
  topicsPerPeerMax: 256,
  validationsPendingMax: 1_024,
  exchangeDialsMax: 8,
  directPeers: [],
  directConnectTicks: 300,
  signaturePolicy: 'strict-sign',
  scoring: { params: DEFAULT_SCORE_PARAMS, thresholds: DEFAULT_SCORE_THRESHOLDS },
}

/** Throws on parameters the spec rules out; a config error is a bug of the caller. */
export function checkGossipParams(params: GossipParams): void {
  const { D, Dlo, Dhi, Dscore, Dout } = params
  if (!(Dlo <= D && D <= Dhi)) throw new RangeError(`mesh degrees must satisfy Dlo <= D <= Dhi (got ${Dlo}, ${D}, ${Dhi})`)
  if (!(Dout < Dlo && Dout <= D / 2)) throw new RangeError(`Dout must be below Dlo and at most D/2 (got ${Dout})`)
  if (Dscore > D) throw new RangeError(`Dscore must not exceed D (got ${Dscore})`)
  if (params.mcacheGossip > params.mcacheLength) throw new RangeError('mcacheGossip must not exceed mcacheLength')
  const thresholds = params.scoring?.thresholds
  if (thresholds !== undefined) {
    const { gossipThreshold, publishThreshold, graylistThreshold, acceptPXThreshold } = thresholds
    if (!(gossipThreshold <= 0 && publishThreshold <= gossipThreshold && graylistThreshold <= publishThreshold)) {
      throw new RangeError('score thresholds must satisfy graylist <= publish <= gossip <= 0')
    }
    if (acceptPXThreshold < 0) throw new RangeError('acceptPXThreshold must not be negative')
  }
}
