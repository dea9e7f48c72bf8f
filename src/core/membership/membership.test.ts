import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Prng } from '../prng.ts'
import { asPeerId, type PeerId } from '../sans-io.ts'
import { DEFAULT_MEMBERSHIP_CONFIG, Membership, type MembershipAction, type MembershipConfig } from './membership.ts'

const A = asPeerId('A')
const B = asPeerId('B')
const C = asPeerId('C')

function core(self: PeerId, overrides: Partial<MembershipConfig> = {}): Membership {
  return new Membership({ ...DEFAULT_MEMBERSHIP_CONFIG, self, ...overrides }, Prng.fromSeed(`test-${self}`))
}

function drain(membership: Membership): MembershipAction[] {
  const actions: MembershipAction[] = []
  for (let action = membership.poll(); action; action = membership.poll()) actions.push(action)
  return actions
}

test('pings a neighbour when its deadline comes and reports the round trip', () => {
  const a = core(A)
  a.handle(0, { type: 'peer-connected', peer: B, direction: 'outbound', addresses: ['/ip4/127.0.0.1/tcp/1'] })
  drain(a)
  const deadline = a.nextDeadline()!
  assert.ok(deadline > 0 && deadline <= DEFAULT_MEMBERSHIP_CONFIG.pingIntervalMs)
  a.handle(deadline - 1, { type: 'tick' })
  assert.deepEqual(drain(a), [], 'a tick before the deadline does nothing')
  a.handle(deadline, { type: 'tick' })
  const [ping] = drain(a)
  assert.equal(ping?.type, 'send')
  assert.ok(ping?.type === 'send' && ping.message.type === 'ping')
  a.handle(deadline + 42, { type: 'message', from: B, message: { type: 'pong', nonce: ping.message.nonce } })
  assert.deepEqual(drain(a), [{ type: 'emit', event: { type: 'peer-alive', peer: B, addresses: ['/ip4/127.0.0.1/tcp/1'], rttMs: 42 } }])
  assert.equal(a.rttMs(B), 42)
})

test('a pong with the wrong nonce is counted and ignored', () => {
  const a = core(A)
  a.handle(0, { type: 'peer-connected', peer: B, direction: 'outbound', addresses: [] })
  a.handle(a.nextDeadline()!, { type: 'tick' })
  drain(a)
  a.handle(a.nextDeadline()! - 1, { type: 'message', from: B, message: { type: 'pong', nonce: 12345 } })
  assert.deepEqual(drain(a), [])
  assert.equal(a.counters.unexpectedPongs, 1)
})

test('a silent neighbour is declared dead after pingFailuresMax timeouts and disconnected', () => {
  const a = core(A, { pingFailuresMax: 2 })
  a.handle(0, { type: 'peer-connected', peer: B, direction: 'outbound', addresses: [] })
  const actions: MembershipAction[] = []
  for (let step = 0; step < 10 && a.connectedCount > 0; step++) {
    a.handle(a.nextDeadline()!, { type: 'tick' })
    actions.push(...drain(a))
  }
  assert.equal(actions.filter((action) => action.type === 'send' && action.message.type === 'ping').length, 2)
  assert.deepEqual(actions.slice(-2), [
    { type: 'disconnect', peer: B, reason: 'ping-timeout' },
    { type: 'emit', event: { type: 'peer-dead', peer: B } },
  ])
  assert.equal(a.counters.pingTimeouts, 2)
})

test('answers a ping with a pong carrying the same nonce', () => {
  const b = core(B)
  b.handle(0, { type: 'peer-connected', peer: A, direction: 'inbound', addresses: [] })
  drain(b)
  b.handle(1, { type: 'message', from: A, message: { type: 'ping', nonce: 7 } })
  assert.deepEqual(drain(b), [{ type: 'send', to: A, message: { type: 'pong', nonce: 7 } }])
})

test('peer exchange: a newcomer asks its first neighbour, learns a peer and dials it', () => {
  const b = core(B)
  b.handle(0, { type: 'peer-connected', peer: C, direction: 'outbound', addresses: ['/c'] })
  b.handle(0, { type: 'peer-connected', peer: A, direction: 'inbound', addresses: [] })
  drain(b)
  const a = core(A)
  a.handle(0, { type: 'peer-connected', peer: B, direction: 'outbound', addresses: ['/b'] })
  const [request] = drain(a)
  assert.ok(request?.type === 'send')
  assert.deepEqual(request, { type: 'send', to: B, message: { type: 'exchange-request', count: DEFAULT_MEMBERSHIP_CONFIG.exchangePeersMax } })
  b.handle(1, { type: 'message', from: A, message: request.message })
  const [response] = drain(b)
  assert.ok(response?.type === 'send')
  assert.deepEqual(response, { type: 'send', to: A, message: { type: 'exchange-response', peers: [{ peer: C, addresses: ['/c'] }] } })
  a.handle(2, { type: 'message', from: B, message: response.message })
  assert.deepEqual(drain(a).filter((action) => action.type !== 'send'), [{ type: 'dial', peer: C, addresses: ['/c'] }])
  // A second request inside the answer interval is refused.
  b.handle(3, { type: 'message', from: A, message: request.message })
  assert.deepEqual(drain(b), [])
  assert.equal(b.counters.exchangesRefused, 1)
})

test('a failed dial backs off, and the peer is forgotten after dialFailuresMax failures', () => {
  const a = core(A, { dialFailuresMax: 2, dialBackoffMs: 1_000 })
  a.handle(0, { type: 'peer-discovered', peer: B, addresses: ['/b'], source: 'dht' })
  assert.deepEqual(drain(a), [{ type: 'dial', peer: B, addresses: ['/b'] }])
  a.handle(10, { type: 'dial-failed', peer: B, reason: 'refused' })
  assert.deepEqual(drain(a), [])
  assert.equal(a.nextDeadline(), 1_010)
  a.handle(1_010, { type: 'tick' })
  assert.deepEqual(drain(a), [{ type: 'dial', peer: B, addresses: ['/b'] }])
  a.handle(1_020, { type: 'dial-failed', peer: B, reason: 'refused' })
  assert.equal(a.knownCount, 0)
  assert.equal(a.nextDeadline(), undefined)
})

test('inbound connections beyond degreeMax are pruned after being handed peers; outbound ones are kept', () => {
  const a = core(A, { degreeTarget: 1, degreeMax: 2, pruneGraceMs: 500 })
  a.handle(0, { type: 'peer-connected', peer: B, direction: 'outbound', addresses: ['/b'] })
  for (let index = 0; index < 3; index++) {
    a.handle(index + 1, { type: 'peer-connected', peer: asPeerId(`in-${index}`), direction: 'inbound', addresses: [] })
  }
  const handed = drain(a).filter((action) => action.type === 'send' && action.message.type === 'exchange-response')
  const pruned = handed.map((action) => action.type === 'send' && action.to)
  assert.equal(new Set(pruned).size, 2)
  assert.ok(!pruned.includes(B))
  assert.ok(handed.every((action) => action.type === 'send' && action.message.type === 'exchange-response' && action.message.peers.some((record) => record.peer === B)))
  assert.ok(a.nextDeadline()! <= 503)
  a.handle(503, { type: 'tick' })
  const disconnects = drain(a).filter((action) => action.type === 'disconnect')
  assert.deepEqual(disconnects.map((action) => action.type === 'disconnect' && action.peer), pruned)
  assert.equal(a.connectedCount, 2)
})

test('a peer whose connection closed is not dialled straight back', () => {
  const a = core(A, { degreeTarget: 2, dialBackoffMs: 1_000 })
  a.handle(0, { type: 'peer-discovered', peer: B, addresses: ['/b'], source: 'exchange' })
  assert.deepEqual(drain(a), [{ type: 'dial', peer: B, addresses: ['/b'] }])
  a.handle(5, { type: 'peer-connected', peer: B, direction: 'outbound', addresses: ['/b'] })
  drain(a)
  a.handle(10, { type: 'peer-disconnected', peer: B })
  assert.deepEqual(drain(a), [], 'no redial at once')
  a.handle(1_010, { type: 'tick' })
  assert.deepEqual(drain(a), [{ type: 'dial', peer: B, addresses: ['/b'] }])
})

test('bootstrap peers are never forgotten; their backoff is capped', () => {
  const a = core(A, { dialFailuresMax: 2, dialBackoffMs: 1_000, dialBackoffMsMax: 4_000 })
  a.handle(0, { type: 'peer-discovered', peer: B, addresses: ['/b'], source: 'bootstrap' })
  const backoffs: number[] = []
  let now = 0
  for (let failure = 0; failure < 6; failure++) {
    assert.deepEqual(drain(a), [{ type: 'dial', peer: B, addresses: ['/b'] }], `dial ${failure + 1}`)
    const failedAt = now + 1
    a.handle(failedAt, { type: 'dial-failed', peer: B, reason: 'refused' })
    now = a.nextDeadline()!
    backoffs.push(now - failedAt)
    a.handle(now, { type: 'tick' })
  }
  assert.deepEqual(backoffs, [1_000, 2_000, 4_000, 4_000, 4_000, 4_000])
  assert.equal(a.knownCount, 1)
})

test('the address book is bounded', () => {
  const a = core(A, { knownPeersMax: 10, degreeTarget: 0 })
  for (let index = 0; index < 50; index++) a.handle(index, { type: 'peer-discovered', peer: asPeerId(`p${index}`), addresses: [], source: 'dht' })
  assert.equal(a.knownCount, 10)
  assert.equal(a.counters.knownPeersEvicted, 40)
})
