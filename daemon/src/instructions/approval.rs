//! Whether an instruction may run without asking a person: free work always may, paid work when
//! its maximum cost fits the allowance a person set. Pure; the caller passes what is already
//! held or spent today, read in the transaction that then records the decision.

use kroma_protocol::instruction::Allowance;

/// What is already held or spent today by instructions approved through the allowance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UsedToday {
    pub project_usd: f64,
    pub all_usd: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// It spends nothing.
    Free,
    /// It fits the allowance; its maximum is to be reserved against it.
    WithinAllowance,
    /// It came from a drop-folder rule and fits that rule's budget; its maximum is to be
    /// reserved against it.
    WithinBudget,
    /// A person must approve it; the sentence says why.
    NeedsPerson(String),
}

/// Money is compared to the hundredth of a cent: what a plan rounds to.
const EPSILON: f64 = 1e-6;

pub fn decide(max_cost_usd: f64, allowance: &Allowance, used: UsedToday) -> Decision {
    if max_cost_usd <= 0.0 {
        return Decision::Free;
    }
    let cost = usd(max_cost_usd);
    if allowance.per_instruction_usd <= 0.0
        && allowance.per_project_daily_usd <= 0.0
        && allowance.daily_usd <= 0.0
    {
        return Decision::NeedsPerson(format!(
            "it may cost up to {cost} and no allowance for agents is set"
        ));
    }
    if max_cost_usd > allowance.per_instruction_usd + EPSILON {
        return Decision::NeedsPerson(format!(
            "it may cost up to {cost}, more than the {} one instruction may cost without asking",
            usd(allowance.per_instruction_usd)
        ));
    }
    if used.project_usd + max_cost_usd > allowance.per_project_daily_usd + EPSILON {
        return Decision::NeedsPerson(format!(
            "with {} already used today in this project, {cost} more would pass the {} a project may use per day without asking",
            usd(used.project_usd),
            usd(allowance.per_project_daily_usd)
        ));
    }
    if used.all_usd + max_cost_usd > allowance.daily_usd + EPSILON {
        return Decision::NeedsPerson(format!(
            "with {} already used today, {cost} more would pass the {} agents may use per day without asking",
            usd(used.all_usd),
            usd(allowance.daily_usd)
        ));
    }
    Decision::WithinAllowance
}

/// Whether work from a drop-folder rule may run without asking a person: free work always may,
/// paid work when its maximum fits what is left of the rule's budget (`used` is what the rule's
/// budget-approved instructions already hold or spent).
pub fn decide_budget(max_cost_usd: f64, budget_usd: f64, used_usd: f64) -> Decision {
    if max_cost_usd <= 0.0 {
        return Decision::Free;
    }
    let cost = usd(max_cost_usd);
    if budget_usd <= 0.0 {
        return Decision::NeedsPerson(format!(
            "it may cost up to {cost} and its drop-folder rule has no budget"
        ));
    }
    if used_usd + max_cost_usd > budget_usd + EPSILON {
        return Decision::NeedsPerson(format!(
            "with {} of its drop-folder rule's {} budget used, {cost} more does not fit",
            usd(used_usd),
            usd(budget_usd)
        ));
    }
    Decision::WithinBudget
}

fn usd(amount: f64) -> String {
    format!("${amount:.2}")
}

/// An allowance amount must be a real, non-negative number of dollars.
pub fn valid_amount(usd: f64) -> bool {
    usd.is_finite() && (0.0..=1_000_000.0).contains(&usd)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn allowance(per_instruction: f64, per_project: f64, daily: f64) -> Allowance {
        Allowance {
            per_instruction_usd: per_instruction,
            per_project_daily_usd: per_project,
            daily_usd: daily,
        }
    }

    #[test]
    fn a_rule_budget_admits_what_fits_and_nothing_more() {
        assert_eq!(decide_budget(0.0, 0.0, 0.0), Decision::Free);
        assert_eq!(decide_budget(0.4, 1.0, 0.6), Decision::WithinBudget);
        let Decision::NeedsPerson(why) = decide_budget(0.41, 1.0, 0.6) else {
            panic!("over the budget");
        };
        assert!(
            why.contains("$0.60 of its drop-folder rule's $1.00"),
            "{why}"
        );
        let Decision::NeedsPerson(why) = decide_budget(0.01, 0.0, 0.0) else {
            panic!("no budget");
        };
        assert!(why.contains("has no budget"), "{why}");
    }

    #[test]
    fn the_default_allowance_admits_only_free_work() {
        let none = Allowance::default();
        assert_eq!(decide(0.0, &none, UsedToday::default()), Decision::Free);
        let Decision::NeedsPerson(why) = decide(0.01, &none, UsedToday::default()) else {
            panic!("paid work passed a zero allowance");
        };
        assert_eq!(
            why,
            "it may cost up to $0.01 and no allowance for agents is set"
        );
    }

    #[test]
    fn each_limit_is_named_when_it_stops_an_instruction() {
        let set = allowance(1.0, 2.0, 3.0);
        let check = |max: f64, project: f64, all: f64| match decide(
            max,
            &set,
            UsedToday {
                project_usd: project,
                all_usd: all,
            },
        ) {
            Decision::NeedsPerson(why) => why,
            other => format!("{other:?}"),
        };
        assert_eq!(check(1.0, 1.0, 2.0), "WithinAllowance");
        assert!(
            check(1.5, 0.0, 0.0).contains("one instruction"),
            "{}",
            check(1.5, 0.0, 0.0)
        );
        assert!(check(1.0, 1.5, 1.5).contains("a project may use per day"));
        assert!(check(1.0, 0.5, 2.5).contains("agents may use per day"));
    }

    proptest! {
        /// Whatever the numbers, an instruction admitted without a person fits every limit.
        #[test]
        fn admitted_work_fits_every_limit(
            max in 0.0f64..10.0,
            per_instruction in 0.0f64..10.0,
            per_project in 0.0f64..20.0,
            daily in 0.0f64..30.0,
            project in 0.0f64..20.0,
            extra in 0.0f64..10.0,
        ) {
            let set = allowance(per_instruction, per_project, daily);
            let used = UsedToday { project_usd: project, all_usd: project + extra };
            if decide(max, &set, used) == Decision::WithinAllowance {
                prop_assert!(max > 0.0);
                prop_assert!(max <= per_instruction + EPSILON);
                prop_assert!(project + max <= per_project + EPSILON);
                prop_assert!(project + extra + max <= daily + EPSILON);
            }
        }

        /// Admitting instructions one after another never lets their sum pass a daily limit.
        #[test]
        fn a_sequence_never_overruns(costs in proptest::collection::vec(0.01f64..2.0, 1..40)) {
            let set = allowance(2.0, 5.0, 7.0);
            let mut used = UsedToday::default();
            for cost in costs {
                if decide(cost, &set, used) == Decision::WithinAllowance {
                    used.project_usd += cost;
                    used.all_usd += cost;
                }
            }
            prop_assert!(used.project_usd <= 5.0 + EPSILON);
        }
    }
}
