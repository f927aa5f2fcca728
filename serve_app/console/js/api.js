// Every call to the platform's API: the bearer token added, problem+json errors turned into
// ApiError with the server's `detail`, a 401 handed to whoever signs people out.

import { token } from "./session.js";

export class ApiError extends Error {
  constructor(status, detail, problem) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.problem = problem;
  }
}

let unauthorized = () => {};

export function onUnauthorized(handler) {
  unauthorized = handler;
}

async function bodyOf(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * `api("GET", "/models", {query: {name}})`; `json` or `form` (FormData) as the body;
 * `blob: true` for a binary answer (an image).
 */
export async function api(method, path, { json, form, query, blob = false } = {}) {
  const headers = { Accept: "application/json, application/problem+json" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  const search = query ? `?${new URLSearchParams(query)}` : "";
  let response;
  try {
    response = await fetch(path + search, { method, headers, body, credentials: "omit", cache: "no-store" });
  } catch {
    throw new ApiError(0, "the server could not be reached", null);
  }
  if (response.ok && blob) return response.blob();
  const data = await bodyOf(response);
  if (response.ok) return data;
  const detail = typeof data?.detail === "string" ? data.detail : `${response.status} ${response.statusText}`;
  const error = new ApiError(response.status, detail, data);
  if (response.status === 401) unauthorized(error);
  throw error;
}
