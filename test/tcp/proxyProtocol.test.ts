import { IPv4ProxyAddress, IPv6ProxyAddress, V1ProxyProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import { describe, expect, it } from 'vitest';
import { proxyProtocolHeader } from '../../src/tcp/proxyProtocol.js';

const v4 = {
  sourceAddress: '10.0.0.1',
  sourcePort: 51_000,
  destinationAddress: '10.0.0.9',
  destinationPort: 6379,
};
const v6 = {
  sourceAddress: 'fd00::1',
  sourcePort: 51_000,
  destinationAddress: '2001:db8::9',
  destinationPort: 443,
};

describe('proxyProtocolHeader', () => {
  it.each([
    [v4, 'PROXY TCP4 10.0.0.1 10.0.0.9 51000 6379\r\n'],
    [v6, 'PROXY TCP6 fd00::1 2001:db8::9 51000 443\r\n'],
    // An IPv4 client on a dual-stack listener: written as IPv4.
    [
      { ...v4, sourceAddress: '::ffff:10.0.0.1', destinationAddress: '::ffff:10.0.0.9' },
      'PROXY TCP4 10.0.0.1 10.0.0.9 51000 6379\r\n',
    ],
    [{ ...v4, sourceAddress: '::ffff:10.0.0.1' }, 'PROXY TCP4 10.0.0.1 10.0.0.9 51000 6379\r\n'],
    [{ ...v4, destinationAddress: 'fd00::9' }, 'PROXY TCP6 ::ffff:10.0.0.1 fd00::9 51000 6379\r\n'],
    [{ sourceAddress: undefined }, 'PROXY UNKNOWN\r\n'],
  ])('writes v1 for %o', (addresses, line) => {
    const header = proxyProtocolHeader('v1', addresses);
    expect(header.toString('latin1')).toBe(line);
    // An independent parser reads it back.
    if (!line.includes('UNKNOWN')) expect(V1ProxyProtocol.parse(line).source.port).toBe(51_000);
  });

  it('writes v2 for IPv4, as an independent parser reads it', () => {
    const header = proxyProtocolHeader('v2', v4);
    expect(header.subarray(0, 16).toString('hex')).toBe('0d0a0d0a000d0a515549540a2111000c');
    const parsed = V2ProxyProtocol.parse(Buffer.concat([header, Buffer.from('PING')]));
    const address = parsed.proxyAddress as IPv4ProxyAddress;
    expect(address).toBeInstanceOf(IPv4ProxyAddress);
    expect([address.sourceAddress.address, address.sourcePort]).toEqual([[10, 0, 0, 1], 51_000]);
    expect([address.destinationAddress.address, address.destinationPort]).toEqual([[10, 0, 0, 9], 6379]);
    expect(Buffer.from(parsed.data ?? []).toString()).toBe('PING');
  });

  it('writes v2 for IPv6, with :: and an IPv4 tail expanded', () => {
    const header = proxyProtocolHeader('v2', { ...v6, destinationAddress: '::ffff:192.168.0.1' });
    expect(header[13]).toBe(0x21); // TCP over IPv6
    expect(header.readUInt16BE(14)).toBe(36);
    const parsed = V2ProxyProtocol.parse(header);
    const address = parsed.proxyAddress as IPv6ProxyAddress;
    expect(address).toBeInstanceOf(IPv6ProxyAddress);
    expect(header.subarray(16, 32).toString('hex')).toBe('fd000000000000000000000000000001');
    expect(header.subarray(32, 48).toString('hex')).toBe('00000000000000000000ffffc0a80001');
    expect([address.sourcePort, address.destinationPort]).toEqual([51_000, 443]);
  });

  it('writes a v2 LOCAL header when the addresses are unknown', () => {
    expect(proxyProtocolHeader('v2', {}).toString('hex')).toBe('0d0a0d0a000d0a515549540a20000000');
  });
});
