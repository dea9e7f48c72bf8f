import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { MultiaddrConnection } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { ConnectionGuard, type ConnectionRefusal } from './connection-guard.ts'

function setup(limits: { connectionsMax?: number; perIpMax?: number; inboundPerIpPerSecondMax?: number } = {}) {
  let now = 0
  const refusals: ConnectionRefusal[] = []
  const open: Array<{ remoteAddr: Multiaddr }> = []
  const guard = new ConnectionGuard(
    { connectionsMax: 100, perIpMax: 100, inboundPerIpPerSecondMax: 1_000, streamsPerConnectionMax: 10, ...limits },
    () => now,
    (reason) => refusals.push(reason),
  )
  guard.openConnections = () => open
  const gater = guard.gater()
  const attempt = (address: string): boolean => {
    const remoteAddr = multiaddr(address)
    const denied = gater.denyInboundConnection!({ remoteAddr } as MultiaddrConnection) as boolean
    if (!denied) open.push({ remoteAddr })
    return !denied
  }
  return { attempt, refusals, open, advance: (ms: number) => { now += ms } }
}

test('inbound connections from one IP are rate-limited by a token bucket, others are not affected', () => {
  const { attempt, refusals, advance } = setup({ inboundPerIpPerSecondMax: 5 })
  const accepted = Array.from({ length: 20 }, (_, port) => attempt(`/ip4/10.0.0.1/tcp/${1000 + port}`)).filter(Boolean).length
  assert.equal(accepted, 5)
  assert.equal(refusals.filter((reason) => reason === 'inbound-rate').length, 15)
  assert.ok(attempt('/ip4/10.0.0.2/tcp/1000'), 'another address is not limited')
  advance(1_000)
  assert.equal(Array.from({ length: 10 }, (_, port) => attempt(`/ip4/10.0.0.1/tcp/${2000 + port}`)).filter(Boolean).length, 5, 'the bucket refills')
})

test('open connections are limited per IP and in total', () => {
  const perIp = setup({ perIpMax: 3 })
  assert.equal(Array.from({ length: 5 }, (_, port) => perIp.attempt(`/ip4/10.0.0.1/tcp/${port + 1}`)).filter(Boolean).length, 3)
  assert.deepEqual(perIp.refusals, ['per-ip-max', 'per-ip-max'])
  assert.ok(perIp.attempt('/ip6/::1/tcp/1'))

  const total = setup({ connectionsMax: 4 })
  assert.equal(Array.from({ length: 6 }, (_, index) => total.attempt(`/ip4/10.0.0.${index + 1}/tcp/1`)).filter(Boolean).length, 4)
  assert.deepEqual(total.refusals, ['connections-max', 'connections-max'])
})
