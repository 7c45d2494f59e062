//! The in-memory database: users, posts, likes, comments, products,
//! workouts, food logs and trainer content, seeded deterministically.
//!
//! The store is plain data behind one `std::sync::RwLock` held by the
//! server; no method here awaits, so the lock is never held across an
//! await point.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Password of every seeded user (`student1`..`student45`,
/// `trainer1`..`trainer5`).
pub const SEEDED_PASSWORD: &str = "corevia-pass";
/// Seeded students: `student1` ..= `student{SEEDED_STUDENTS}`.
pub const SEEDED_STUDENTS: u32 = 45;
/// Seeded trainers: `trainer1` ..= `trainer{SEEDED_TRAINERS}`.
pub const SEEDED_TRAINERS: u32 = 5;
const SEEDED_POSTS: usize = 200;
const SEEDED_PRODUCTS: usize = 40;

/// Rounds of salted SHA-256 a password goes through: real CPU work on
/// login and register (about a hundred microseconds), as a password hash
/// costs on a real backend, but small enough not to dominate a replay.
const PASSWORD_ROUNDS: u32 = 1500;

/// A user's role, the JWT `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The default role.
    Student,
    /// May sell products and publish content.
    Trainer,
}

impl Role {
    /// `student` or `trainer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Trainer => "trainer",
        }
    }
}

/// A registered user.
#[derive(Debug, Clone)]
pub struct User {
    /// Id, also the JWT `sub`.
    pub id: u64,
    /// Unique login name.
    pub username: String,
    /// Contact address.
    pub email: String,
    /// Salted, iterated SHA-256 of the password.
    pub password_hash: [u8; 32],
    /// Role.
    pub role: Role,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// A social post.
#[derive(Debug, Clone)]
pub struct Post {
    /// Id (1-based, position in the post list + 1).
    pub id: u64,
    /// Author's user id.
    pub author_id: u64,
    /// Author's username, copied so the feed needs no join.
    pub author: String,
    /// Body.
    pub text: String,
    /// Likes from seeding, on top of the likes of the like set.
    pub seeded_likes: u64,
    /// Comments on this post.
    pub comments: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A comment on a post.
#[derive(Debug, Clone)]
pub struct Comment {
    /// Id.
    pub id: u64,
    /// The post.
    pub post_id: u64,
    /// Author's username.
    pub author: String,
    /// Body.
    pub text: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A marketplace product sold by a trainer.
#[derive(Debug, Clone)]
pub struct Product {
    /// Id (1-based).
    pub id: u64,
    /// Seller's user id.
    pub trainer_id: u64,
    /// Seller's username.
    pub trainer: String,
    /// Title.
    pub title: String,
    /// Price.
    pub price: f64,
    /// Description.
    pub description: String,
    /// Lowercased title, what a search matches.
    pub search_key: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A logged workout.
#[derive(Debug, Clone)]
pub struct Workout {
    /// Id.
    pub id: u64,
    /// E.g. `run`.
    pub kind: String,
    /// Duration.
    pub minutes: i64,
    /// Calories burned.
    pub calories: i64,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A logged meal.
#[derive(Debug, Clone)]
pub struct FoodLog {
    /// Id.
    pub id: u64,
    /// What was eaten.
    pub food: String,
    /// Calories eaten.
    pub calories: i64,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A trainer's published content.
#[derive(Debug, Clone)]
pub struct Content {
    /// Id.
    pub id: u64,
    /// Author's user id.
    pub trainer_id: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Everything the testbed knows.
#[derive(Debug)]
pub struct Store {
    /// Users by id.
    pub users: HashMap<u64, User>,
    /// Username → id.
    pub by_name: HashMap<String, u64>,
    next_user_id: u64,
    /// Posts; `posts[i].id == i + 1`.
    pub posts: Vec<Post>,
    /// (post id, user id) pairs of live likes.
    pub likes: HashSet<(u64, u64)>,
    /// Likes per post coming from the like set (index = post id - 1).
    pub like_counts: Vec<u64>,
    /// All comments.
    pub comments: Vec<Comment>,
    /// Products; `products[i].id == i + 1`.
    pub products: Vec<Product>,
    /// Product ids per trainer id, oldest first.
    products_by_trainer: HashMap<u64, Vec<u64>>,
    /// Workouts per user id.
    pub workouts: HashMap<u64, Vec<Workout>>,
    /// Food logs per user id.
    pub food_logs: HashMap<u64, Vec<FoodLog>>,
    /// Trainer content.
    pub content: Vec<Content>,
    next_record_id: u64,
}

/// Hashes `password` salted with `username`.
pub fn hash_password(username: &str, password: &str) -> [u8; 32] {
    let mut digest: [u8; 32] = Sha256::new()
        .chain_update(username.as_bytes())
        .chain_update([0u8])
        .chain_update(password.as_bytes())
        .finalize()
        .into();
    for _ in 0..PASSWORD_ROUNDS {
        digest = Sha256::digest(digest).into();
    }
    digest
}

/// The fixed clock the seeded data is dated from, so two testbeds with
/// the same seed hold identical data.
fn seed_epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0)
        .single()
        .expect("a valid fixed date")
}

const POST_TEXTS: &[&str] = &[
    "Morning run done, 5k in 27 minutes!",
    "Leg day. Can't feel my legs.",
    "New personal best on deadlift today",
    "Meal prep Sunday: chicken, rice, broccoli",
    "Anyone up for a group yoga session?",
    "Recovery day: stretching and a long walk",
    "Tried the HIIT plan, brutal but fun",
    "30 days streak on the app!",
    "Swimming 40 laps before work",
    "Protein pancakes recipe in the comments",
];

const PRODUCT_TITLES: &[&str] = &[
    "12-week strength plan",
    "Beginner running program",
    "Vegan meal plan",
    "Mobility masterclass",
    "Kettlebell basics",
    "Marathon prep coaching",
    "Home workout bundle",
    "Macro tracking guide",
];

const WORKOUT_KINDS: &[&str] = &["run", "cycling", "strength", "yoga", "swim", "hiit"];
const FOODS: &[&str] = &[
    "oatmeal",
    "salad",
    "chicken rice",
    "smoothie",
    "pasta",
    "eggs",
];

impl Store {
    /// The seeded store: 45 students, 5 trainers, 200 posts, 40 products
    /// and a week of workouts and meals per seeded user; identical for
    /// equal seeds.
    #[cfg(test)]
    pub fn seeded(seed: u64) -> Store {
        Store::seeded_with_accounts(seed, SEEDED_STUDENTS, SEEDED_TRAINERS)
    }

    /// The seeded store plus load-test accounts: `student{n}` up to
    /// `students` and `trainer{n}` up to `trainers` (with the seeded
    /// password), so many virtual users can each log in as a user of their
    /// own. The extra accounts are added after the seeded data, which stays
    /// identical; they start with no history.
    pub fn seeded_with_accounts(seed: u64, students: u32, trainers: u32) -> Store {
        let mut store = Store::seeded_base(seed);
        let epoch = seed_epoch();
        let extra = (SEEDED_STUDENTS + 1..=students)
            .map(|i| (format!("student{i}"), Role::Student))
            .chain(
                (SEEDED_TRAINERS + 1..=trainers).map(|i| (format!("trainer{i}"), Role::Trainer)),
            );
        for (name, role) in extra {
            let email = format!("{name}@corevia.test");
            store.add_user(&name, &email, SEEDED_PASSWORD, role, epoch);
        }
        store
    }

    fn seeded_base(seed: u64) -> Store {
        let mut rng = SmallRng::seed_from_u64(seed);
        let epoch = seed_epoch();
        let mut store = Store {
            users: HashMap::new(),
            by_name: HashMap::new(),
            next_user_id: 1,
            posts: Vec::new(),
            likes: HashSet::new(),
            like_counts: Vec::new(),
            comments: Vec::new(),
            products: Vec::new(),
            products_by_trainer: HashMap::new(),
            workouts: HashMap::new(),
            food_logs: HashMap::new(),
            content: Vec::new(),
            next_record_id: 1,
        };
        let accounts = (1..=SEEDED_STUDENTS)
            .map(|i| (format!("student{i}"), Role::Student))
            .chain((1..=SEEDED_TRAINERS).map(|i| (format!("trainer{i}"), Role::Trainer)));
        for (name, role) in accounts {
            let email = format!("{name}@corevia.test");
            store.add_user(&name, &email, SEEDED_PASSWORD, role, epoch);
        }
        let user_count = store.next_user_id - 1;
        for i in 0..SEEDED_POSTS {
            let author_id = rng.gen_range(1..=user_count);
            let text = POST_TEXTS[rng.gen_range(0..POST_TEXTS.len())].to_string();
            let created_at = epoch + ChronoDuration::minutes(i as i64 * 30);
            let post = store.add_post(author_id, text, created_at);
            let index = (post - 1) as usize;
            store.posts[index].seeded_likes = rng.gen_range(0..40);
            store.posts[index].comments = rng.gen_range(0..8);
        }
        let first_trainer = u64::from(SEEDED_STUDENTS) + 1;
        for i in 0..SEEDED_PRODUCTS {
            let trainer_id = rng.gen_range(first_trainer..=user_count);
            let title = PRODUCT_TITLES[i % PRODUCT_TITLES.len()].to_string();
            let price = f64::from(rng.gen_range(5..100u32)) - 0.01;
            let created_at = epoch + ChronoDuration::hours(i as i64);
            store.add_product(
                trainer_id,
                title,
                price,
                "A program by a certified CoreVia trainer".to_string(),
                created_at,
            );
        }
        for user_id in 1..=user_count {
            for day in 0..7 {
                let at = epoch - ChronoDuration::days(day);
                let kind = WORKOUT_KINDS[rng.gen_range(0..WORKOUT_KINDS.len())].to_string();
                let minutes = rng.gen_range(15..90);
                let calories = minutes * rng.gen_range(6..12);
                store.add_workout(user_id, kind, minutes, calories, at);
                let food = FOODS[rng.gen_range(0..FOODS.len())].to_string();
                store.add_food_log(user_id, food, rng.gen_range(300..900), at);
            }
        }
        store
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_record_id;
        self.next_record_id += 1;
        id
    }

    /// Adds a user; `None` if the username is taken.
    pub fn add_user(
        &mut self,
        username: &str,
        email: &str,
        password: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Option<User> {
        self.add_user_hashed(
            username,
            email,
            hash_password(username, password),
            role,
            now,
        )
    }

    /// Adds a user whose password was hashed beforehand (outside the lock).
    pub fn add_user_hashed(
        &mut self,
        username: &str,
        email: &str,
        password_hash: [u8; 32],
        role: Role,
        now: DateTime<Utc>,
    ) -> Option<User> {
        if self.by_name.contains_key(username) {
            return None;
        }
        let user = User {
            id: self.next_user_id,
            username: username.to_string(),
            email: email.to_string(),
            password_hash,
            role,
            created_at: now,
        };
        self.next_user_id += 1;
        self.by_name.insert(user.username.clone(), user.id);
        self.users.insert(user.id, user.clone());
        Some(user)
    }

    /// The user called `username`.
    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.by_name.get(username).and_then(|id| self.users.get(id))
    }

    /// Display name of a user id; ids minted by another testbed (a token
    /// signed with the same secret) get a stable placeholder.
    pub fn username(&self, id: u64) -> String {
        match self.users.get(&id) {
            Some(u) => u.username.clone(),
            None => format!("user{id}"),
        }
    }

    /// Adds a post; returns its id.
    pub fn add_post(&mut self, author_id: u64, text: String, now: DateTime<Utc>) -> u64 {
        let id = self.posts.len() as u64 + 1;
        let author = self.username(author_id);
        self.posts.push(Post {
            id,
            author_id,
            author,
            text,
            seeded_likes: 0,
            comments: 0,
            created_at: now,
        });
        self.like_counts.push(0);
        id
    }

    /// The post with this id.
    pub fn post(&self, id: u64) -> Option<&Post> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.posts.get(index)
    }

    /// Total likes of a post.
    pub fn likes_of(&self, post: &Post) -> u64 {
        post.seeded_likes + self.like_counts[(post.id - 1) as usize]
    }

    /// Likes (`liked == true`) or unlikes a post; idempotent. `None` if the
    /// post does not exist, else the new like count.
    pub fn set_like(&mut self, post_id: u64, user_id: u64, liked: bool) -> Option<u64> {
        self.post(post_id)?;
        let index = (post_id - 1) as usize;
        let changed = if liked {
            self.likes.insert((post_id, user_id))
        } else {
            self.likes.remove(&(post_id, user_id))
        };
        if changed {
            if liked {
                self.like_counts[index] += 1;
            } else {
                self.like_counts[index] -= 1;
            }
        }
        let post = &self.posts[index];
        Some(self.likes_of(post))
    }

    /// Adds a comment; `None` if the post does not exist.
    pub fn add_comment(
        &mut self,
        post_id: u64,
        author_id: u64,
        text: String,
        now: DateTime<Utc>,
    ) -> Option<Comment> {
        self.post(post_id)?;
        let comment = Comment {
            id: self.next_id(),
            post_id,
            author: self.username(author_id),
            text,
            created_at: now,
        };
        self.posts[(post_id - 1) as usize].comments += 1;
        self.comments.push(comment.clone());
        Some(comment)
    }

    /// Adds a product; returns it.
    pub fn add_product(
        &mut self,
        trainer_id: u64,
        title: String,
        price: f64,
        description: String,
        now: DateTime<Utc>,
    ) -> Product {
        let product = Product {
            id: self.products.len() as u64 + 1,
            trainer_id,
            trainer: self.username(trainer_id),
            search_key: title.to_lowercase(),
            title,
            price,
            description,
            created_at: now,
        };
        self.products_by_trainer
            .entry(trainer_id)
            .or_default()
            .push(product.id);
        self.products.push(product.clone());
        product
    }

    /// Ids of a trainer's products, oldest first.
    pub fn products_of(&self, trainer_id: u64) -> &[u64] {
        self.products_by_trainer
            .get(&trainer_id)
            .map_or(&[], Vec::as_slice)
    }

    /// The product with this id.
    pub fn product(&self, id: u64) -> Option<&Product> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.products.get(index)
    }

    /// Adds a workout for a user.
    pub fn add_workout(
        &mut self,
        user_id: u64,
        kind: String,
        minutes: i64,
        calories: i64,
        now: DateTime<Utc>,
    ) -> Workout {
        let workout = Workout {
            id: self.next_id(),
            kind,
            minutes,
            calories,
            created_at: now,
        };
        self.workouts
            .entry(user_id)
            .or_default()
            .push(workout.clone());
        workout
    }

    /// Adds a food log for a user.
    pub fn add_food_log(
        &mut self,
        user_id: u64,
        food: String,
        calories: i64,
        now: DateTime<Utc>,
    ) -> FoodLog {
        let log = FoodLog {
            id: self.next_id(),
            food,
            calories,
            created_at: now,
        };
        self.food_logs.entry(user_id).or_default().push(log.clone());
        log
    }

    /// Adds trainer content.
    pub fn add_content(
        &mut self,
        trainer_id: u64,
        title: String,
        body: String,
        now: DateTime<Utc>,
    ) -> Content {
        let content = Content {
            id: self.next_id(),
            trainer_id,
            title,
            body,
            created_at: now,
        };
        self.content.push(content.clone());
        content
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_seeds_give_equal_data() {
        let a = Store::seeded(7);
        let b = Store::seeded(7);
        let texts = |s: &Store| s.posts.iter().map(|p| p.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&a), texts(&b));
        assert_eq!(a.posts.len(), 200);
        assert_eq!(a.products.len(), 40);
        assert_eq!(a.users.len(), 50);
        assert_eq!(a.user_by_name("trainer3").unwrap().role, Role::Trainer);
        assert_eq!(
            a.user_by_name("student17").unwrap().password_hash,
            hash_password("student17", SEEDED_PASSWORD)
        );
    }

    #[test]
    fn likes_are_idempotent_per_user() {
        let mut s = Store::seeded(1);
        let base = s.likes_of(s.post(3).unwrap());
        assert_eq!(s.set_like(3, 1, true), Some(base + 1));
        assert_eq!(s.set_like(3, 1, true), Some(base + 1));
        assert_eq!(s.set_like(3, 2, true), Some(base + 2));
        assert_eq!(s.set_like(3, 1, false), Some(base + 1));
        assert_eq!(s.set_like(3, 1, false), Some(base + 1));
        assert_eq!(s.set_like(999, 1, true), None);
        assert_eq!(s.set_like(0, 1, true), None);
    }

    #[test]
    fn taken_username_is_refused() {
        let mut s = Store::seeded(1);
        let now = Utc::now();
        assert!(s
            .add_user("student1", "x@y", "pw", Role::Student, now)
            .is_none());
        let u = s
            .add_user("newbie", "x@y", "pw", Role::Student, now)
            .unwrap();
        assert_eq!(u.id, 51);
    }
}
