import { describe, expect, it } from 'vitest';
import { AccessDeniedError } from '../src/errors.js';

describe('AccessDeniedError', () => {
  it('keeps its message and exposes the hint as a field, so callers add advice without parsing the message', () => {
    const cause = new Error('EACCES');
    const err = new AccessDeniedError('127.0.0.1:13', 'use a port >= 1024', { cause });
    expect(err.message).toBe('cannot listen on 127.0.0.1:13: permission denied; use a port >= 1024');
    expect(err).toMatchObject({ code: 'NET_ERR_ACCESS', endpoint: '127.0.0.1:13', hint: 'use a port >= 1024', cause });
  });
});
