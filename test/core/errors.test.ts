import { describe, expect, it } from 'vitest';
import { errorStatus, isMcgravityError, McgravityError } from '../../src/core/errors.js';

describe('McgravityError', () => {
  it('carries a stable code, its HTTP status and the cause', () => {
    const cause = new Error('ECONNREFUSED');
    const error = new McgravityError('EUPSTREAM', 'upstream refused the connection', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('McgravityError');
    expect(error.code).toBe('EUPSTREAM');
    expect(error.statusCode).toBe(502);
    expect(error.cause).toBe(cause);
    expect(isMcgravityError(error)).toBe(true);
    expect(isMcgravityError(error, 'EUPSTREAM')).toBe(true);
    expect(isMcgravityError(error, 'ENOUPSTREAM')).toBe(false);
    expect(isMcgravityError(cause)).toBe(false);
  });

  it('maps each code to its HTTP status', () => {
    expect(errorStatus).toMatchObject({
      ERATELIMITED: 429,
      EUPSTREAM: 502,
      ENOUPSTREAM: 503,
      ECIRCUITOPEN: 503,
      EOVERLOADED: 503,
      EUPSTREAMTIMEOUT: 504,
      EBODYTOOLARGE: 413,
      EBADREQUEST: 400,
      EREQUESTTIMEOUT: 408,
      EUNAUTHORIZED: 401,
      EFORBIDDEN: 403,
      ENOTFOUND: 404,
      EMETHOD: 405,
      ESESSIONGONE: 404,
    });
  });

  it('lets the caller override the status', () => {
    expect(new McgravityError('EUPSTREAM', 'x', { statusCode: 503 }).statusCode).toBe(503);
  });
});
