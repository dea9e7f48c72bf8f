import assert from 'node:assert/strict'
import { test } from 'node:test'
import { asPeerId } from '../sans-io.ts'
import { MessageCache } from './message-cache.ts'
import type { GossipMessage, MessageId } from './messages.ts'
import { DEFAULT_SCORE_PARAMS, DEFAULT_TOPIC_SCORE_PARAMS, PeerScore, type ScoreParams, type TopicScoreParams } from './score.ts'
import { SeenCache } from './seen-cache.ts'

const TOPIC = 't'
const peer = asPeerId('a')
const other = asPeerId('b')

/** Only the named terms weigh; everything else is zero. */
function scoreWith(topic: Partial<TopicScoreParams>, rest: Partial<ScoreParams> = {}): PeerScore {
  const silent: TopicScoreParams = {
    ...DEFAULT_TOPIC_SCORE_PARAMS,
    timeInMeshWeight: 0, firstMessageDeliveriesWeight: 0, meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0, invalidMessageDeliveriesWeight: 0,
  }
  return new PeerScore({
    ...DEFAULT_SCORE_PARAMS,
    ipColocationFactorWeight: 0,
    behaviourPenaltyWeight: 0,
    ...rest,
    topics: {},
    defaultTopic: { ...silent, ...topic },
  })
}

let counter = 0
function deliverFirst(score: PeerScore, from = peer, now = 0): MessageId {
  const id = `m${counter++}` as MessageId
  score.messageReceived(id, TOPIC, now)
  score.messageAccepted(id, from, now)
  return id
}

test('P1 grows with time in mesh, in quanta, up to its cap', () => {
  const score = scoreWith({ timeInMeshWeight: 1, timeInMeshQuantumMs: 1_000, timeInMeshCap: 10 })
  score.addPeer(peer, undefined)
  score.graft(peer, TOPIC, 0)
  score.refresh(0)
  score.refresh(5_000)
  assert.equal(score.score(peer), 5)
  score.refresh(60_000)
  assert.equal(score.score(peer), 10)
  score.prune(peer, TOPIC)
  score.refresh(61_000)
  assert.equal(score.score(peer), 0, 'out of the mesh, no time counts')
})

test('P2 counts first deliveries, capped, and decays each interval until it is zero', () => {
  const score = scoreWith({ firstMessageDeliveriesWeight: 1, firstMessageDeliveriesCap: 3, firstMessageDeliveriesDecay: 0.5 })
  score.addPeer(peer, undefined)
  score.refresh(0)
  for (let index = 0; index < 5; index++) deliverFirst(score)
  score.refresh(0)
  assert.equal(score.score(peer), 3)
  score.refresh(1_000)
  assert.equal(score.score(peer), 1.5)
  score.refresh(10_000)
  assert.equal(score.score(peer), 0, 'below decayToZero it is zero')
})

test('P3 penalises a mesh peer\'s delivery deficit, squared, only after activation; P3b keeps it after a prune', () => {
  const score = scoreWith({
    meshMessageDeliveriesWeight: -1, meshMessageDeliveriesThreshold: 4, meshMessageDeliveriesDecay: 1,
    meshMessageDeliveriesActivationMs: 5_000, meshMessageDeliveriesWindowMs: 100,
    meshFailurePenaltyWeight: -1, meshFailurePenaltyDecay: 1,
  })
  score.addPeer(peer, undefined)
  score.addPeer(other, undefined)
  score.graft(peer, TOPIC, 0)
  score.refresh(0)
  deliverFirst(score, peer, 0)
  score.refresh(1_000)
  assert.equal(score.score(peer), 0, 'not active yet')
  score.refresh(5_000)
  assert.equal(score.score(peer), -9, 'deficit 3, squared')
  // A copy soon after the first (from another peer) counts as a mesh delivery; a late one does not.
  const id = deliverFirst(score, other, 5_000)
  score.duplicateMessage(id, peer, 5_050)
  score.refresh(5_050)
  assert.equal(score.score(peer), -4)
  const late = deliverFirst(score, other, 6_000)
  score.duplicateMessage(late, peer, 6_500)
  score.refresh(6_500)
  assert.equal(score.score(peer), -4)
  score.prune(peer, TOPIC)
  score.refresh(7_000)
  assert.equal(score.score(peer), -4, 'P3b: the deficit² stays as a penalty')
})

test('P4 squares invalid deliveries, including copies that arrived while the message was being validated', () => {
  const score = scoreWith({ invalidMessageDeliveriesWeight: -1, invalidMessageDeliveriesDecay: 1 })
  score.addPeer(peer, undefined)
  score.addPeer(other, undefined)
  const id = 'bad' as MessageId
  score.messageReceived(id, TOPIC, 0)
  score.duplicateMessage(id, other, 1)
  score.messageRejected(id, peer, TOPIC)
  assert.equal(score.score(peer), -1)
  assert.equal(score.score(other), -1)
  score.duplicateMessage(id, other, 2)
  score.invalidMessage(peer, TOPIC)
  assert.equal(score.score(peer), -4)
  assert.equal(score.score(other), -4)
  // An ignored message costs nothing.
  const ignored = 'meh' as MessageId
  score.messageReceived(ignored, TOPIC, 3)
  score.messageIgnored(ignored)
  score.duplicateMessage(ignored, other, 4)
  assert.equal(score.score(other), -4)
})

test('P6 penalises peers sharing an IP beyond the threshold; P7 penalises behaviour beyond its threshold', () => {
  const score = scoreWith({}, { ipColocationFactorWeight: -1, ipColocationFactorThreshold: 2, behaviourPenaltyWeight: -1, behaviourPenaltyThreshold: 1, behaviourPenaltyDecay: 0.5 })
  for (const name of ['a', 'b', 'c', 'd']) score.addPeer(asPeerId(name), '203.0.113.1')
  assert.equal(score.score(peer), -4, '4 on one IP, 2 over the threshold')
  score.removePeer(asPeerId('d'), 0)
  assert.equal(score.score(peer), -1)
  score.addPenalty(other, 3)
  assert.equal(score.score(other), -1 - 4)
  score.refresh(0)
  score.refresh(1_000)
  assert.equal(score.score(other), -1 - 0.25, 'the penalty decays to 1.5: 0.5 over')
})

test('a negative score outlives a disconnection for retainScoreMs; a non-negative one is forgotten', () => {
  const score = scoreWith({}, { behaviourPenaltyWeight: -1, behaviourPenaltyThreshold: 0, behaviourPenaltyDecay: 1, retainScoreMs: 10_000 })
  score.addPeer(peer, undefined)
  score.addPeer(other, undefined)
  score.addPenalty(peer, 2)
  score.removePeer(peer, 0)
  score.removePeer(other, 0)
  score.refresh(5_000)
  score.addPeer(peer, undefined)
  assert.equal(score.score(peer), -4)
  score.removePeer(peer, 5_000)
  score.refresh(20_000)
  score.addPeer(peer, undefined)
  assert.equal(score.score(peer), 0)
})

test('topic scores are weighted and capped; application-specific scores are added', () => {
  const score = new PeerScore({
    ...DEFAULT_SCORE_PARAMS,
    topicScoreCap: 5,
    appSpecificWeight: 2,
    topics: { [TOPIC]: { ...DEFAULT_TOPIC_SCORE_PARAMS, topicWeight: 0.5, firstMessageDeliveriesWeight: 1, firstMessageDeliveriesCap: 100 } },
    defaultTopic: undefined,
  }, { appSpecificScore: () => -1 })
  score.addPeer(peer, undefined)
  for (let index = 0; index < 4; index++) deliverFirst(score)
  score.refresh(0)
  assert.equal(score.score(peer), 0.5 * 4 - 2)
  for (let index = 0; index < 40; index++) deliverFirst(score)
  score.refresh(0)
  assert.equal(score.score(peer), 5 - 2, 'capped at topicScoreCap')
  const unscored = asPeerId('x')
  score.addPeer(unscored, undefined)
  score.messageReceived('y' as MessageId, 'unscored-topic', 0)
  score.messageAccepted('y' as MessageId, unscored, 0)
  score.refresh(0)
  assert.equal(score.score(unscored), -2, 'a topic without parameters counts for nothing')
})

test('the message cache keeps mcacheLength heartbeats, gossips the last mcacheGossip, and bounds IWANT retransmissions', () => {
  const cache = new MessageCache(3, 2)
  const message = (topic: string): GossipMessage => ({ topic, data: new Uint8Array(1) })
  cache.put('a' as MessageId, message('x'))
  cache.shift()
  cache.put('b' as MessageId, message('x'))
  cache.put('c' as MessageId, message('y'))
  assert.deepEqual(cache.gossipIds('x'), ['b', 'a'])
  cache.shift()
  assert.deepEqual(cache.gossipIds('x'), ['b'], 'a is past the gossip window but still served')
  assert.equal(cache.get('a' as MessageId)?.topic, 'x')
  cache.shift()
  assert.equal(cache.get('a' as MessageId), undefined)
  assert.equal(cache.getForPeer('b' as MessageId, peer, 2) !== 'absent', true)
  cache.getForPeer('b' as MessageId, peer, 2)
  assert.equal(cache.getForPeer('b' as MessageId, peer, 2), 'too-many')
  assert.notEqual(cache.getForPeer('b' as MessageId, other, 2), 'too-many')
  cache.shift()
  cache.shift()
  assert.equal(cache.size, 0)
  assert.equal(cache.hasGossip(), false)
})

test('the seen cache forgets ids after their TTL, in order', () => {
  const seen = new SeenCache(1_000)
  assert.equal(seen.add('a' as MessageId, 0), true)
  assert.equal(seen.add('a' as MessageId, 10), false)
  seen.add('b' as MessageId, 500)
  seen.sweep(1_000)
  assert.equal(seen.has('a' as MessageId), false)
  assert.equal(seen.has('b' as MessageId), true)
  seen.sweep(1_500)
  assert.equal(seen.size, 0)
})
