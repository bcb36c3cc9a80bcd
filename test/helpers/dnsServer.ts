// The DNS server the discovery example stands in for a real one with: one implementation for both.
export {
  type DnsRecords,
  type DnsServer,
  type SrvData,
  startDnsServer,
} from '../../examples/support/dnsServer.js';
