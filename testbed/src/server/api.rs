//! Routing and the endpoint handlers.
//!
//! Every request goes through the same steps, in FastAPI's order: route
//! (404/405), body size (413), authentication (401), role (403), body
//! validation (422), then the endpoint's cost (wait + CPU work, see
//! `latency`), then the store. The store lock is taken only in the last
//! step and released before the response is serialised.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use chrono::{Datelike, Utc};
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value};

use super::jwt::{self, Claims};
use super::latency::{self, Endpoint};
use super::store::{hash_password, Post, Product, Role, Store};
use super::validation::Validator;
use super::App;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest `limit` of a list endpoint.
const MAX_PAGE: i64 = 100;
/// Newest products a marketplace search looks at.
const SEARCH_WINDOW: usize = 1000;
/// Newest workouts and meals the dashboard aggregates: a long replay
/// keeps adding them, and the dashboard's cost must not grow with it.
const DASHBOARD_WINDOW: usize = 500;

/// A matched route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Health,
    Register,
    Login,
    Feed,
    CreatePost,
    Like { post: String, liked: bool },
    Comment { post: String },
    Dashboard,
    Browse,
    ProductDetail { product: String },
    CreateProduct,
    MyProducts,
    CreateWorkout,
    LogFood,
    Me,
    TrainerContent,
}

impl Route {
    fn endpoint(&self) -> Option<Endpoint> {
        Some(match self {
            Route::Health => return None,
            Route::Register => Endpoint::Register,
            Route::Login => Endpoint::Login,
            Route::Feed => Endpoint::SocialFeed,
            Route::CreatePost => Endpoint::CreatePost,
            Route::Like { .. } => Endpoint::LikePost,
            Route::Comment { .. } => Endpoint::AddComment,
            Route::Dashboard => Endpoint::AnalyticsDashboard,
            Route::Browse => Endpoint::MarketplaceBrowse,
            Route::ProductDetail { .. } => Endpoint::ProductDetail,
            Route::CreateProduct => Endpoint::CreateProduct,
            Route::MyProducts => Endpoint::MyProducts,
            Route::CreateWorkout => Endpoint::CreateWorkout,
            Route::LogFood => Endpoint::LogFood,
            Route::Me => Endpoint::UserProfile,
            Route::TrainerContent => Endpoint::TrainerContent,
        })
    }

    fn needs_auth(&self) -> bool {
        !matches!(self, Route::Health | Route::Register | Route::Login)
    }

    fn trainer_only(&self) -> bool {
        matches!(
            self,
            Route::CreateProduct | Route::MyProducts | Route::TrainerContent
        )
    }
}

/// Matches method and path. `Err` carries 404 or 405.
fn route(method: &Method, path: &str) -> Result<Route, StatusCode> {
    if path == "/health" {
        return if method == Method::GET || method == Method::HEAD {
            Ok(Route::Health)
        } else {
            Err(StatusCode::METHOD_NOT_ALLOWED)
        };
    }
    let rest = path.strip_prefix("/api/v1/").ok_or(StatusCode::NOT_FOUND)?;
    let segments: Vec<&str> = rest.split('/').collect();
    // (route for GET, for POST, for DELETE) of one path.
    let (get, post, delete) = match segments.as_slice() {
        ["auth", "register"] => (None, Some(Route::Register), None),
        ["auth", "login"] => (None, Some(Route::Login), None),
        ["social", "feed"] => (Some(Route::Feed), None, None),
        ["social", "posts"] => (None, Some(Route::CreatePost), None),
        ["social", "posts", id, "like"] => (
            None,
            Some(Route::Like {
                post: id.to_string(),
                liked: true,
            }),
            Some(Route::Like {
                post: id.to_string(),
                liked: false,
            }),
        ),
        ["social", "posts", id, "comments"] => (
            None,
            Some(Route::Comment {
                post: id.to_string(),
            }),
            None,
        ),
        ["analytics", "dashboard"] => (Some(Route::Dashboard), None, None),
        ["marketplace", "products"] => (Some(Route::Browse), Some(Route::CreateProduct), None),
        ["marketplace", "products", id] => (
            Some(Route::ProductDetail {
                product: id.to_string(),
            }),
            None,
            None,
        ),
        ["marketplace", "my-products"] => (Some(Route::MyProducts), None, None),
        ["workouts"] => (None, Some(Route::CreateWorkout), None),
        ["food-logs"] => (None, Some(Route::LogFood), None),
        ["users", "me"] => (Some(Route::Me), None, None),
        ["trainer", "content"] => (None, Some(Route::TrainerContent), None),
        _ => return Err(StatusCode::NOT_FOUND),
    };
    let chosen = match *method {
        Method::GET | Method::HEAD => get,
        Method::POST => post,
        Method::DELETE => delete,
        _ => None,
    };
    chosen.ok_or(StatusCode::METHOD_NOT_ALLOWED)
}

/// A JSON response.
fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).expect("a serde_json::Value always serializes");
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn detail(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "detail": text }))
}

/// A request refused before it reaches an endpoint: status and
/// `detail` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refusal(StatusCode, &'static str);

impl Refusal {
    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = detail(self.0, self.1);
        if self.0 == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Who is calling, from a verified token.
#[derive(Debug, Clone, Copy)]
struct Caller {
    id: u64,
    role: Role,
}

fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller, Refusal> {
    let not_authenticated = Refusal(StatusCode::UNAUTHORIZED, "Not authenticated");
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(not_authenticated)?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(not_authenticated),
    };
    let claims = jwt::verify(
        token,
        app.config.jwt_secret.as_bytes(),
        Utc::now().timestamp(),
    )
    .map_err(|r| Refusal(StatusCode::UNAUTHORIZED, r.detail()))?;
    // A token signed with this testbed's secret is trusted even when its
    // user id is not in the store: a replay may mint tokens for users
    // registered while recording against another testbed.
    let id = claims
        .sub
        .parse::<u64>()
        .map_err(|_| Refusal(StatusCode::UNAUTHORIZED, "Could not validate credentials"))?;
    Ok(Caller {
        id,
        role: claims.role,
    })
}

/// Reads the whole body, at most `MAX_BODY_BYTES`.
async fn read_body<B>(headers: &HeaderMap, body: B) -> Result<Bytes, Refusal>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let too_large = Refusal(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large),
        Err(_) => Err(Refusal(
            StatusCode::BAD_REQUEST,
            "Could not read the request body",
        )),
    }
}

/// Answers one request.
pub async fn handle<B>(app: Arc<App>, request: Request<B>) -> Response<Full<Bytes>>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = request.into_parts();
    let route = match route(&parts.method, parts.uri.path()) {
        Ok(route) => route,
        Err(StatusCode::METHOD_NOT_ALLOWED) => {
            return detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        }
        Err(status) => return detail(status, "Not Found"),
    };
    if route == Route::Health {
        return json_response(
            StatusCode::OK,
            &json!({"status": "ok", "release": app.config.release.as_str()}),
        );
    }
    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let caller = if route.needs_auth() {
        match authenticate(&app, &parts.headers) {
            Ok(caller) => Some(caller),
            Err(refusal) => return refusal.into_response(),
        }
    } else {
        None
    };
    if route.trainer_only() && caller.is_some_and(|c| c.role != Role::Trainer) {
        return detail(StatusCode::FORBIDDEN, "Trainer role required");
    }
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let request = Parsed {
        route: route.clone(),
        caller,
        query,
        body,
    };
    let input = match validate(&request) {
        Ok(input) => input,
        Err(errors) => return json_response(StatusCode::UNPROCESSABLE_ENTITY, &errors),
    };
    let endpoint = route.endpoint().expect("only /health has no endpoint");
    let draw = app.jitter.draw(endpoint, app.config.release);
    tokio::time::sleep(draw.wait).await;
    latency::work(draw.work_units);
    if draw.fail {
        return detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    }
    let (status, value) = execute(&app, &request, input);
    json_response(status, &value)
}

/// A request after routing and authentication.
struct Parsed {
    route: Route,
    caller: Option<Caller>,
    query: HashMap<String, String>,
    body: Bytes,
}

/// Validated input of one route.
enum Input {
    None,
    Page {
        limit: usize,
        offset: usize,
        q: Option<String>,
    },
    Id(u64),
    Register {
        username: String,
        email: String,
        password: String,
        role: Role,
    },
    Login {
        username: String,
        password: String,
    },
    Text(String),
    Product {
        title: String,
        price: f64,
        description: String,
    },
    Workout {
        kind: String,
        minutes: i64,
        calories: i64,
    },
    Food {
        food: String,
        calories: i64,
    },
    Content {
        title: String,
        body: String,
    },
}

/// Checks the body, query and path parameters; `Err` is the 422 body.
fn validate(request: &Parsed) -> Result<Input, Value> {
    let mut v = Validator::new();
    let page = |v: &mut Validator| {
        let limit = v.query_integer(
            request.query.get("limit").map(String::as_str),
            "limit",
            20,
            1,
            MAX_PAGE,
        );
        let offset = v.query_integer(
            request.query.get("offset").map(String::as_str),
            "offset",
            0,
            0,
            i64::MAX,
        );
        (limit as usize, offset as usize)
    };
    let path_id = |v: &mut Validator, raw: &str, name: &str| match raw.parse::<u64>() {
        Ok(id) => id,
        Err(_) => {
            v.path_error(name, raw);
            0
        }
    };
    let input = match &request.route {
        Route::Health | Route::Dashboard | Route::Me => Input::None,
        Route::Feed | Route::MyProducts => {
            let (limit, offset) = page(&mut v);
            Input::Page {
                limit,
                offset,
                q: None,
            }
        }
        Route::Browse => {
            let (limit, offset) = page(&mut v);
            let q = request.query.get("q").filter(|q| !q.is_empty()).cloned();
            Input::Page { limit, offset, q }
        }
        Route::Like { post, .. } => Input::Id(path_id(&mut v, post, "post_id")),
        Route::ProductDetail { product } => Input::Id(path_id(&mut v, product, "product_id")),
        Route::Register => {
            let Some(f) = v.object(&request.body) else {
                return v.finish().map(|()| Input::None);
            };
            let username = v.string(&f, "username", 3, 32);
            if let Some(name) = &username {
                if !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                {
                    v.invalid(
                        "username",
                        "only letters, digits, '_', '.' and '-' are allowed",
                        json!(name),
                    );
                }
            }
            let email = v.string(&f, "email", 3, 254);
            if let Some(email) = &email {
                if !email.contains('@') {
                    v.invalid("email", "value is not a valid email address", json!(email));
                }
            }
            let password = v.string(&f, "password", 6, 128);
            let role = v.string_or(&f, "role", "student", 16);
            let role = match role.as_deref() {
                Some("student") => Some(Role::Student),
                Some("trainer") => Some(Role::Trainer),
                Some(other) => {
                    v.enum_error("role", "'student' or 'trainer'", other);
                    None
                }
                None => None,
            };
            match (username, email, password, role) {
                (Some(username), Some(email), Some(password), Some(role)) => Input::Register {
                    username,
                    email,
                    password,
                    role,
                },
                _ => Input::None,
            }
        }
        Route::Login => {
            let Some(f) = v.object(&request.body) else {
                return v.finish().map(|()| Input::None);
            };
            match (
                v.string(&f, "username", 1, 64),
                v.string(&f, "password", 1, 128),
            ) {
                (Some(username), Some(password)) => Input::Login { username, password },
                _ => Input::None,
            }
        }
        Route::CreatePost => {
            let Some(f) = v.object(&request.body) else {
                return v.finish().map(|()| Input::None);
            };
            v.string(&f, "text", 1, 2000)
                .map_or(Input::None, Input::Text)
        }
        Route::Comment { post } => {
            // Checked here; `execute` reads it from the route again.
            path_id(&mut v, post, "post_id");
            let Some(f) = v.object(&request.body) else {
                return v.finish().map(|()| Input::None);
            };
            v.string(&f, "text", 1, 1000)
                .map_or(Input::None, Input::Text)
        }
        Route::CreateProduct => {
            let Some(f) = v.object(&request.body) else {
                return v.finish().map(|()| Input::None);
            };
            let title = v.string(&f, "title", 1, 200);
            let price = v.number(&f, "price", 0.0, 100_000.0);
            let description = v.string_or(&f, "description", "", 5000);
            match (title, price, description) {
                (Some(title), Some(price), Some(description)) => Input::Product {
                    title,
                    price,
                    description,
                },
                _ => Input::None,
            }
        }
        Route::CreateWorkout => {
            let Some(f) = v.object(&request.body) else {
                return v.finish().map(|()| Input::None);
            };
            let kind = v.string(&f, "kind", 1, 40);
            let minutes = v.integer(&f, "minutes", 1, 1440);
            let calories = v.integer(&f, "calories", 0, 20_000);
            match (kind, minutes, calories) {
                (Some(kind), Some(minutes), Some(calories)) => Input::Workout {
                    kind,
                    minutes,
                    calories,
                },
                _ => Input::None,
            }
        }
        Route::LogFood => {
            let Some(f) = v.object(&request.body) else {
                return v.finish().map(|()| Input::None);
            };
            let food = v.string(&f, "food", 1, 200);
            let calories = v.integer(&f, "calories", 0, 20_000);
            match (food, calories) {
                (Some(food), Some(calories)) => Input::Food { food, calories },
                _ => Input::None,
            }
        }
        Route::TrainerContent => {
            let Some(f) = v.object(&request.body) else {
                return v.finish().map(|()| Input::None);
            };
            let title = v.string(&f, "title", 1, 200);
            let body = v.string(&f, "body", 1, 20_000);
            match (title, body) {
                (Some(title), Some(body)) => Input::Content { title, body },
                _ => Input::None,
            }
        }
    };
    v.finish()?;
    Ok(input)
}

fn post_json(store: &Store, post: &Post) -> Value {
    json!({
        "id": post.id,
        "author": post.author,
        "author_id": post.author_id,
        "text": post.text,
        "likes": store.likes_of(post),
        "comments": post.comments,
        "created_at": post.created_at.to_rfc3339(),
    })
}

fn product_json(product: &Product) -> Value {
    json!({
        "id": product.id,
        "title": product.title,
        "price": product.price,
        "description": product.description,
        "trainer": product.trainer,
        "trainer_id": product.trainer_id,
        "created_at": product.created_at.to_rfc3339(),
    })
}

fn post_id_of(route: &Route) -> Option<u64> {
    match route {
        Route::Like { post, .. } | Route::Comment { post } => post.parse().ok(),
        _ => None,
    }
}

/// Runs a validated request against the store.
fn execute(app: &App, request: &Parsed, input: Input) -> (StatusCode, Value) {
    let now = Utc::now();
    let caller = request.caller;
    let caller_id = caller.map_or(0, |c| c.id);
    // Password hashing is CPU work done outside the lock.
    match input {
        Input::Register {
            username,
            email,
            password,
            role,
        } => {
            let hash = hash_password(&username, &password);
            let mut store = app.store.write().unwrap_or_else(PoisonError::into_inner);
            return match store.add_user_hashed(&username, &email, hash, role, now) {
                Some(user) => (
                    StatusCode::CREATED,
                    json!({"id": user.id, "username": user.username, "email": user.email, "role": user.role.as_str()}),
                ),
                None => (
                    StatusCode::CONFLICT,
                    json!({"detail": "Username already registered"}),
                ),
            };
        }
        Input::Login { username, password } => {
            let hash = hash_password(&username, &password);
            let user = {
                let store = app.store.read().unwrap_or_else(PoisonError::into_inner);
                store.user_by_name(&username).cloned()
            };
            return match user {
                Some(user) if user.password_hash == hash => {
                    let claims = Claims {
                        sub: user.id.to_string(),
                        role: user.role,
                        iat: now.timestamp(),
                        exp: now.timestamp() + jwt::TOKEN_LIFETIME_S,
                    };
                    let token = jwt::sign(&claims, app.config.jwt_secret.as_bytes());
                    (
                        StatusCode::OK,
                        json!({
                            "access_token": token,
                            "token_type": "bearer",
                            "user": {"id": user.id, "username": user.username, "role": user.role.as_str()},
                        }),
                    )
                }
                _ => (
                    StatusCode::UNAUTHORIZED,
                    json!({"detail": "Incorrect username or password"}),
                ),
            };
        }
        _ => {}
    }
    match (&request.route, input) {
        (Route::Feed, Input::Page { limit, offset, .. }) => {
            let store = app.store.read().unwrap_or_else(PoisonError::into_inner);
            let items: Vec<Value> = store
                .posts
                .iter()
                .rev()
                .skip(offset)
                .take(limit)
                .map(|p| post_json(&store, p))
                .collect();
            (
                StatusCode::OK,
                json!({"items": items, "total": store.posts.len(), "limit": limit, "offset": offset}),
            )
        }
        (Route::CreatePost, Input::Text(text)) => {
            let mut store = app.store.write().unwrap_or_else(PoisonError::into_inner);
            let id = store.add_post(caller_id, text, now);
            let post = store.post(id).expect("the post was just added");
            (StatusCode::CREATED, post_json(&store, post))
        }
        (Route::Like { liked, .. }, Input::Id(post_id)) => {
            let mut store = app.store.write().unwrap_or_else(PoisonError::into_inner);
            match store.set_like(post_id, caller_id, *liked) {
                Some(likes) => (
                    StatusCode::OK,
                    json!({"post_id": post_id, "liked": liked, "likes": likes}),
                ),
                None => (StatusCode::NOT_FOUND, json!({"detail": "Post not found"})),
            }
        }
        (Route::Comment { .. }, Input::Text(text)) => {
            let post_id = post_id_of(&request.route).expect("validated as an integer");
            let mut store = app.store.write().unwrap_or_else(PoisonError::into_inner);
            match store.add_comment(post_id, caller_id, text, now) {
                Some(c) => (
                    StatusCode::CREATED,
                    json!({"id": c.id, "post_id": c.post_id, "author": c.author, "text": c.text, "created_at": c.created_at.to_rfc3339()}),
                ),
                None => (StatusCode::NOT_FOUND, json!({"detail": "Post not found"})),
            }
        }
        (Route::Dashboard, _) => (StatusCode::OK, dashboard(app, caller_id)),
        (Route::Browse, Input::Page { limit, offset, q }) => {
            let store = app.store.read().unwrap_or_else(PoisonError::into_inner);
            let (items, total): (Vec<Value>, usize) = match q {
                None => (
                    store
                        .products
                        .iter()
                        .rev()
                        .skip(offset)
                        .take(limit)
                        .map(product_json)
                        .collect(),
                    store.products.len(),
                ),
                Some(q) => {
                    // Search covers the newest SEARCH_WINDOW products, so
                    // its cost stays flat while a long run keeps adding
                    // products.
                    let needle = q.to_lowercase();
                    let matching: Vec<&Product> = store
                        .products
                        .iter()
                        .rev()
                        .take(SEARCH_WINDOW)
                        .filter(|p| p.search_key.contains(&needle))
                        .collect();
                    let items = matching
                        .iter()
                        .skip(offset)
                        .take(limit)
                        .map(|p| product_json(p))
                        .collect();
                    (items, matching.len())
                }
            };
            (StatusCode::OK, json!({"items": items, "total": total}))
        }
        (Route::ProductDetail { .. }, Input::Id(id)) => {
            let store = app.store.read().unwrap_or_else(PoisonError::into_inner);
            match store.product(id) {
                Some(p) => (StatusCode::OK, product_json(p)),
                None => (
                    StatusCode::NOT_FOUND,
                    json!({"detail": "Product not found"}),
                ),
            }
        }
        (
            Route::CreateProduct,
            Input::Product {
                title,
                price,
                description,
            },
        ) => {
            let mut store = app.store.write().unwrap_or_else(PoisonError::into_inner);
            let p = store.add_product(caller_id, title, price, description, now);
            (StatusCode::CREATED, product_json(&p))
        }
        (Route::MyProducts, Input::Page { limit, offset, .. }) => {
            let store = app.store.read().unwrap_or_else(PoisonError::into_inner);
            let mine = store.products_of(caller_id);
            let items: Vec<Value> = mine
                .iter()
                .rev()
                .skip(offset)
                .take(limit)
                .filter_map(|id| store.product(*id))
                .map(product_json)
                .collect();
            (StatusCode::OK, json!({"items": items, "total": mine.len()}))
        }
        (
            Route::CreateWorkout,
            Input::Workout {
                kind,
                minutes,
                calories,
            },
        ) => {
            let mut store = app.store.write().unwrap_or_else(PoisonError::into_inner);
            let w = store.add_workout(caller_id, kind, minutes, calories, now);
            (
                StatusCode::CREATED,
                json!({"id": w.id, "kind": w.kind, "minutes": w.minutes, "calories": w.calories, "created_at": w.created_at.to_rfc3339()}),
            )
        }
        (Route::LogFood, Input::Food { food, calories }) => {
            let mut store = app.store.write().unwrap_or_else(PoisonError::into_inner);
            let f = store.add_food_log(caller_id, food, calories, now);
            (
                StatusCode::CREATED,
                json!({"id": f.id, "food": f.food, "calories": f.calories, "created_at": f.created_at.to_rfc3339()}),
            )
        }
        (Route::Me, _) => {
            let store = app.store.read().unwrap_or_else(PoisonError::into_inner);
            let role = caller.map_or(Role::Student, |c| c.role);
            let (username, email, created_at) = match store.users.get(&caller_id) {
                Some(u) => (
                    u.username.clone(),
                    u.email.clone(),
                    Some(u.created_at.to_rfc3339()),
                ),
                None => (store.username(caller_id), String::new(), None),
            };
            (
                StatusCode::OK,
                json!({
                    "id": caller_id,
                    "username": username,
                    "email": email,
                    "role": role.as_str(),
                    "created_at": created_at,
                    "stats": {
                        "workouts": store.workouts.get(&caller_id).map_or(0, Vec::len),
                        "food_logs": store.food_logs.get(&caller_id).map_or(0, Vec::len),
                    },
                }),
            )
        }
        (Route::TrainerContent, Input::Content { title, body }) => {
            let mut store = app.store.write().unwrap_or_else(PoisonError::into_inner);
            let c = store.add_content(caller_id, title, body, now);
            (
                StatusCode::CREATED,
                json!({"id": c.id, "trainer_id": c.trainer_id, "title": c.title, "body": c.body, "created_at": c.created_at.to_rfc3339()}),
            )
        }
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"detail": "Internal Server Error"}),
        ),
    }
}

/// Weekly totals of the caller's latest workouts and meals (ISO weeks,
/// newest first) plus the totals over them.
fn dashboard(app: &App, user_id: u64) -> Value {
    #[derive(Default)]
    struct Week {
        workouts: u64,
        minutes: i64,
        burned: i64,
        eaten: i64,
        meals: u64,
    }
    let mut weeks: BTreeMap<(i32, u32), Week> = BTreeMap::new();
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    {
        let store = app.store.read().unwrap_or_else(PoisonError::into_inner);
        for w in store
            .workouts
            .get(&user_id)
            .into_iter()
            .flatten()
            .rev()
            .take(DASHBOARD_WINDOW)
        {
            let iso = w.created_at.iso_week();
            let week = weeks.entry((iso.year(), iso.week())).or_default();
            week.workouts += 1;
            week.minutes += w.minutes;
            week.burned += w.calories;
            *kinds.entry(w.kind.clone()).or_default() += 1;
        }
        for f in store
            .food_logs
            .get(&user_id)
            .into_iter()
            .flatten()
            .rev()
            .take(DASHBOARD_WINDOW)
        {
            let iso = f.created_at.iso_week();
            let week = weeks.entry((iso.year(), iso.week())).or_default();
            week.meals += 1;
            week.eaten += f.calories;
        }
    }
    let week_json: Vec<Value> = weeks
        .iter()
        .rev()
        .take(8)
        .map(|((year, week), w)| {
            json!({
                "week": format!("{year}-W{week:02}"),
                "workouts": w.workouts,
                "minutes": w.minutes,
                "calories_burned": w.burned,
                "meals": w.meals,
                "calories_eaten": w.eaten,
                "net_calories": w.eaten - w.burned,
            })
        })
        .collect();
    let total = |f: fn(&Week) -> i64| weeks.values().map(f).sum::<i64>();
    let favourite = kinds
        .iter()
        .max_by_key(|(kind, n)| (**n, std::cmp::Reverse((*kind).clone())))
        .map(|(kind, _)| kind.clone());
    json!({
        "user_id": user_id,
        "weeks": week_json,
        "totals": {
            "workouts": total(|w| w.workouts as i64),
            "minutes": total(|w| w.minutes),
            "calories_burned": total(|w| w.burned),
            "calories_eaten": total(|w| w.eaten),
        },
        "favourite_workout": favourite,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_the_profile() {
        assert_eq!(route(&Method::GET, "/api/v1/social/feed"), Ok(Route::Feed));
        assert_eq!(
            route(&Method::DELETE, "/api/v1/social/posts/12/like"),
            Ok(Route::Like {
                post: "12".into(),
                liked: false
            })
        );
        assert_eq!(
            route(&Method::POST, "/api/v1/marketplace/products"),
            Ok(Route::CreateProduct)
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/marketplace/products/3"),
            Ok(Route::ProductDetail {
                product: "3".into()
            })
        );
        assert_eq!(
            route(&Method::PUT, "/api/v1/social/feed"),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/nope"),
            Err(StatusCode::NOT_FOUND)
        );
        assert_eq!(route(&Method::GET, "/"), Err(StatusCode::NOT_FOUND));
    }
}
