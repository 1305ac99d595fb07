import type { FastifyRequest } from 'fastify';
import type {} from '@fastify/multipart';
import { ApiError } from '../../app/errors.js';
import { MAX_JSON_DEPTH, valueDepth } from '../../http/json.js';
import { type Form, setField } from './request.js';

export interface FormLimits {
  /** The largest file part, in bytes. */
  fileBytes: number;
  /** How many file parts (0: none is taken). */
  files: number;
  /** The largest string part, in bytes (a data: URL of the largest image must fit). */
  fieldBytes: number;
}

/** No OpenAI video request has more than a handful of fields; this bounds what a form can make us hold. */
const MAX_FIELDS = 16;

/**
 * The body of a create, remix or extension as a `Form`: a JSON object as parsed, or a
 * multipart/form-data body read part by part (bracket keys nested, files in memory within their
 * limit). Anything else, or a malformed form, is a 400 in the door's envelope.
 */
export async function readForm(req: FastifyRequest, limits: FormLimits): Promise<Form> {
  if (!req.isMultipart()) {
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ApiError('validation', 'Request body must be a JSON object or multipart/form-data');
    }
    return body as Form;
  }
  const form: Form = {};
  // Each string part may be as large as the largest (a data: URL); all of them together, not much more.
  let textBytes = 0;
  const maxTextBytes = 2 * limits.fieldBytes;
  try {
    const parts = req.parts({
      limits: { fileSize: limits.fileBytes, files: limits.files, fields: MAX_FIELDS, parts: MAX_FIELDS + limits.files, fieldSize: limits.fieldBytes, fieldNameSize: 200 },
    });
    for await (const part of parts) {
      if (part.type === 'file') {
        const bytes = await part.toBuffer();
        setField(form, part.fieldname, { kind: 'file', filename: part.filename, contentType: part.mimetype, bytes });
      } else {
        if (part.valueTruncated) throw new ApiError('too_large', `${part.fieldname} is longer than ${limits.fieldBytes} bytes`, part.fieldname);
        textBytes += typeof part.value === 'string' ? Buffer.byteLength(part.value) : 0;
        if (textBytes > maxTextBytes) throw new ApiError('too_large', `the form's text parts are larger than ${maxTextBytes} bytes in all`);
        // A part typed application/json arrives parsed (an object for input_reference, say); one
        // nested past the body's depth limit is refused as a JSON body would be.
        if (valueDepth(part.value) > MAX_JSON_DEPTH) {
          throw new ApiError('validation', `${part.fieldname} nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`, part.fieldname);
        }
        setField(form, part.fieldname, part.value);
      }
    }
  } catch (e) {
    throw formError(e, limits);
  }
  return form;
}

/** What went wrong reading a form, as the door's error (busboy's own errors are plain Errors). */
function formError(e: unknown, limits: FormLimits): ApiError {
  if (e instanceof ApiError) return e;
  switch ((e as { code?: string }).code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return new ApiError('too_large', `a file part is larger than the limit of ${limits.fileBytes} bytes`);
    case 'FST_FILES_LIMIT':
      return new ApiError('validation', limits.files === 0 ? 'this request takes no file part' : `at most ${limits.files} file part may be sent`);
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new ApiError('too_large', `the form has more than ${MAX_FIELDS} fields`);
    case 'FST_PROTO_VIOLATION':
      return new ApiError('validation', 'a field name is not allowed');
    case 'FST_INVALID_JSON_FIELD_ERROR':
      return new ApiError('validation', 'a part typed application/json is not valid JSON');
  }
  return new ApiError('validation', `malformed multipart/form-data body: ${(e as Error).message ?? String(e)}`);
}
