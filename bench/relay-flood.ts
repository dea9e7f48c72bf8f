/**
 * `npm run bench:relay-flood [-- --attempts N]` (default 1,000): reservation requests from
 * one host against a Shoal relay (src/testing/relay-flood.ts), then a well-behaved peer from
 * another address; prints what the relay granted and refused.
 */
import { parseArgs } from 'node:util'
import { FLOOD_HOST_LIMITS, FLOOD_RELAY_LIMITS, floodReservations } from '../src/testing/relay-flood.ts'

const { values } = parseArgs({ options: { attempts: { type: 'string', default: '1000' } } })
const result = await floodReservations(Number(values.attempts))
console.log(`relay limits: ${FLOOD_RELAY_LIMITS.reservationsMax} reservations, ${FLOOD_HOST_LIMITS.relayReservationsPerIpMax} per IP, ${FLOOD_HOST_LIMITS.inboundPerIpPerSecondMax} connections/s and ${FLOOD_HOST_LIMITS.perIpMax} open per IP`)
console.log(`${result.attempts} reservation attempts from 127.0.0.1 in ${result.seconds.toFixed(1)} s`)
console.log(`reservations held for 127.0.0.1 at the end: ${result.floodReservations}`)
console.log(`refusals by reason: ${JSON.stringify(result.refusals)}`)
console.log(`a peer from 127.0.0.2 afterwards: reservation ${result.wellBehavedReserved ? 'granted' : 'REFUSED'}, reached through the relay: ${result.wellBehavedReached}`)
console.log(`process RSS (relay and clients, one process): ${result.relayRssMb.toFixed(0)} MB`)
