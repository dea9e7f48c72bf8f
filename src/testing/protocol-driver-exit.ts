/**
 * Test fixture, run as a child process by protocol-driver.test.ts: two membership nodes
 * ping each other, then stop their drivers and libp2p nodes. The process must then exit
 * by itself; a timer or socket left behind keeps it alive and the test times out.
 */
import { introduce, membershipNode, waitFor } from './libp2p.ts'

const a = await membershipNode(undefined)
const b = await membershipNode(undefined)
introduce(a, b)
await waitFor(() => a.membership.counters.pongsReceived > 0 && b.membership.counters.pongsReceived > 0, 'pongs both ways')
await a.driver.stop()
await b.driver.stop()
await a.libp2p.stop()
await b.libp2p.stop()
console.log(`pongs ${a.membership.counters.pongsReceived + b.membership.counters.pongsReceived}`)
