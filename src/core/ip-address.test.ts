import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ipGroupOf, ipOf } from './ip-address.ts'

test('public addresses group by /16 (IPv4) and /32 (IPv6)', () => {
  assert.equal(ipGroupOf(['/ip4/203.0.113.7/tcp/4001'], true), 'ip4/203.0')
  assert.equal(ipGroupOf(['/ip6/2001:db8:1:2::7/tcp/4001'], true), 'ip6/8193:3512')
  assert.equal(ipGroupOf(['/ip4/10.0.0.1/tcp/1', '/ip4/198.51.100.1/tcp/1'], true), 'ip4/198.51', 'the public address counts')
})

test('loopback, private and link-local addresses are exempt unless configured otherwise', () => {
  for (const address of ['/ip4/127.0.0.1/tcp/1', '/ip4/10.1.2.3/tcp/1', '/ip4/192.168.1.1/tcp/1', '/ip4/172.20.0.1/tcp/1', '/ip6/::1/tcp/1', '/ip6/fe80::1/tcp/1', '/ip6/fd00::1/tcp/1']) {
    assert.equal(ipGroupOf([address], true), undefined, address)
  }
  assert.equal(ipGroupOf(['/ip4/127.0.0.1/tcp/1'], false), 'ip4/127.0')
})

test('addresses without an IP, or malformed, have no group', () => {
  assert.equal(ipGroupOf(['/dns4/example.com/tcp/1'], true), undefined)
  assert.equal(ipGroupOf(['/ip6/1::2::3/tcp/1', '/ip6/zz::1'], false), undefined)
  assert.equal(ipGroupOf([], true), undefined)
})

test('a peer\'s IP is its first public one; private ones count only when not exempt', () => {
  assert.equal(ipOf(['/ip4/10.0.0.1/tcp/1', '/ip4/198.51.100.9/tcp/1'], true), '198.51.100.9')
  assert.equal(ipOf(['/ip6/2001:db8::7/tcp/4001'], true), '2001:db8:0:0:0:0:0:7')
  assert.equal(ipOf(['/ip4/127.0.0.1/tcp/1'], true), undefined)
  assert.equal(ipOf(['/ip4/127.0.0.1/tcp/1'], false), '127.0.0.1')
  assert.equal(ipOf(['/dns4/example.com/tcp/1'], false), undefined)
})
