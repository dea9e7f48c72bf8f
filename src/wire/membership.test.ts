import assert from 'node:assert/strict'
import { test } from 'node:test'
import { asPeerId } from '../core/sans-io.ts'
import { ADDRESSES_PER_PEER_MAX, DEFAULT_MEMBERSHIP_CONFIG, type MembershipMessage } from '../core/membership/membership.ts'
import { ADDRESS_LENGTH_MAX, decodeMembership, encodeMembership, EXCHANGE_PEERS_COUNT_MAX, MEMBERSHIP_FRAME_BYTES_MAX } from './membership.ts'
import { MembershipFrame } from './proto/membership.ts'

const messages: MembershipMessage[] = [
  { type: 'ping', nonce: 0 },
  { type: 'pong', nonce: 0xffffffff },
  { type: 'exchange-request', count: 16 },
  { type: 'exchange-response', peers: [] },
  { type: 'exchange-response', peers: [{ peer: asPeerId('12D3KooWabc'), addresses: ['/ip4/10.0.0.1/tcp/4001', '/ip4/10.0.0.1/tcp/4002/ws'] }] },
]

test('every message survives a round trip', () => {
  for (const message of messages) assert.deepEqual(decodeMembership(encodeMembership(message)), { ok: true, value: message })
})

function rejectionCode(bytes: Uint8Array): string | undefined {
  const result = decodeMembership(bytes)
  return result.ok ? undefined : result.error.code
}

test('malformed frames are rejected with a reason, never thrown', () => {
  const valid = encodeMembership(messages[4]!)
  for (let length = 1; length < valid.byteLength; length++) {
    assert.ok(rejectionCode(valid.subarray(0, length)) !== undefined, `truncated at ${length}`)
  }
  assert.equal(rejectionCode(new Uint8Array(0)), 'empty-frame')
  assert.equal(rejectionCode(new Uint8Array(MEMBERSHIP_FRAME_BYTES_MAX + 1)), 'frame-too-large')
  assert.equal(rejectionCode(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), 'malformed')
  assert.equal(rejectionCode(MembershipFrame.encode({ ping: { nonce: 1 }, pong: { nonce: 1 } })), 'several-messages')
  assert.equal(rejectionCode(MembershipFrame.encode({ exchangeResponse: { peers: [{ id: '', addresses: [] }] } })), 'bad-peer-id')
  assert.equal(rejectionCode(MembershipFrame.encode({ exchangeResponse: { peers: [{ id: 'x', addresses: ['/'.repeat(300)] }] } })), 'address-too-long')
  const crowd = Array.from({ length: EXCHANGE_PEERS_COUNT_MAX + 1 }, (_, index) => ({ id: `p${index}`, addresses: [] }))
  assert.equal(rejectionCode(MembershipFrame.encode({ exchangeResponse: { peers: crowd } })), 'too-many-items')
  const trailing = new Uint8Array([...encodeMembership(messages[0]!), 0x0a])
  assert.equal(rejectionCode(trailing), 'malformed')
})

test('random bytes never throw', () => {
  let state = 12345
  for (let round = 0; round < 2_000; round++) {
    const bytes = new Uint8Array(1 + (round % 64))
    for (let index = 0; index < bytes.length; index++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0
      bytes[index] = state >>> 24
    }
    decodeMembership(bytes)
  }
})

test('the largest exchange response the core can build fits in one frame', () => {
  const address = `/dns4/${'a'.repeat(ADDRESS_LENGTH_MAX - 20)}/tcp/4001`.slice(0, ADDRESS_LENGTH_MAX)
  const peers = Array.from({ length: DEFAULT_MEMBERSHIP_CONFIG.exchangePeersMax }, (_, index) => ({
    peer: asPeerId(`12D3KooW${String(index).padStart(44, 'x')}`),
    addresses: Array.from({ length: ADDRESSES_PER_PEER_MAX }, () => address),
  }))
  const bytes = encodeMembership({ type: 'exchange-response', peers })
  assert.ok(bytes.byteLength <= MEMBERSHIP_FRAME_BYTES_MAX, `${bytes.byteLength} bytes`)
  assert.ok(decodeMembership(bytes).ok)
})
